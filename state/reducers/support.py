"""Support reducers: tickets, replies, resolutions, satisfaction ratings and reviews."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from schemas import events as ev
from state.profile import (
    Profile,
    Stamped,
    Ticket,
)
from state.reducers.bounds import enforce_ticket_bound
from state.reducers.clock import newer
from state.tiers import count_in_month

PROMOTER_MIN: Final = 9
DETRACTOR_MAX: Final = 6


# --- support ----------------------------------------------------------------------------------


def _ticket(profile: Profile, ticket_id: str) -> Ticket:
    tickets = profile.support.tickets
    ticket = tickets.get(ticket_id)
    if ticket is None:
        ticket = tickets[ticket_id] = Ticket(ticket_id=ticket_id)
        enforce_ticket_bound(profile.support)
    return ticket


def _first_response_seconds(ticket: Ticket) -> float | None:
    if ticket.opened_at is None or ticket.first_response_at is None:
        return None
    return max(0.0, ticket.first_response_at - ticket.opened_at)


def _update_ticket_times(profile: Profile, ticket: Ticket, change: Callable[[], None]) -> None:
    """Apply ``change`` and keep the first-response totals equal to the sum over tickets."""
    support = profile.support
    before = _first_response_seconds(ticket)
    change()
    after = _first_response_seconds(ticket)
    support.first_response_count += (after is not None) - (before is not None)
    support.first_response_seconds_total += (after or 0.0) - (before or 0.0)


def _note_sentiment(profile: Profile, score: float | None, ts: float, event_id: str) -> None:
    """Count the sentiment of a text the customer wrote (``engine/service_desk.py`` scores
    it before the event is applied, unless the event came with one)."""
    if score is None:
        return
    support = profile.support
    support.sentiment_count += 1
    support.sentiment_total_e4 += round(score * 10_000)
    if newer(support.last_sentiment, ts, event_id):
        support.last_sentiment = Stamped(str(score), ts, event_id)


def _ticket_opened(profile: Profile, event: ev.TicketOpened, ts: float) -> None:
    props = event.properties
    ticket = _ticket(profile, props.ticket_id)
    if ticket.opened_at is None:
        _note_sentiment(profile, props.sentiment, ts, event.event_id)
        ticket.sentiment = props.sentiment
        ticket.category = props.category
        ticket.queue = props.queue
        profile.support.opened_count += 1
        if props.is_complaint:
            profile.support.complaint_count += 1

    def open_() -> None:
        if ticket.opened_at is None or ts < ticket.opened_at:
            ticket.opened_at = ts
        ticket.priority = props.priority
        ticket.is_complaint = props.is_complaint

    _update_ticket_times(profile, ticket, open_)


def _ticket_replied(profile: Profile, event: ev.TicketReplied, ts: float) -> None:
    if event.properties.author != "agent":
        _note_sentiment(profile, event.properties.sentiment, ts, event.event_id)
        return
    ticket = _ticket(profile, event.properties.ticket_id)

    def reply() -> None:
        if ticket.first_response_at is None or ts < ticket.first_response_at:
            ticket.first_response_at = ts

    _update_ticket_times(profile, ticket, reply)


def _ticket_resolved(profile: Profile, event: ev.TicketResolved, ts: float) -> None:
    ticket = _ticket(profile, event.properties.ticket_id)
    if ticket.resolved_at is None:
        profile.support.resolved_count += 1
        ticket.resolved_at = ts
    elif ts < ticket.resolved_at:
        ticket.resolved_at = ts


def _satisfaction_rated(profile: Profile, event: ev.SatisfactionRated, ts: float) -> None:
    props, support = event.properties, profile.support
    _note_sentiment(profile, props.sentiment, ts, event.event_id)
    if props.csat is not None:
        support.csat_count += 1
        support.csat_total += props.csat
        if newer(support.last_csat, ts, event.event_id):
            support.last_csat = Stamped(str(props.csat), ts, event.event_id)
    if props.nps is not None:
        support.nps_count += 1
        support.nps_promoters += props.nps >= PROMOTER_MIN
        support.nps_detractors += props.nps <= DETRACTOR_MAX


def _review_submitted(profile: Profile, event: ev.ReviewSubmitted, ts: float) -> None:
    profile.support.review_count += 1
    profile.support.review_rating_total += event.properties.rating
    _note_sentiment(profile, event.properties.sentiment, ts, event.event_id)
    count_in_month(profile.growth.reviews_by_month, ts)  # growth value, when tiers use it


#: The reducer of each event kind this module handles.
REDUCERS: Final[dict[type[Any], Callable[[Profile, Any, float], None]]] = {
    ev.TicketOpened: _ticket_opened,
    ev.TicketReplied: _ticket_replied,
    ev.TicketResolved: _ticket_resolved,
    ev.SatisfactionRated: _satisfaction_rated,
    ev.ReviewSubmitted: _review_submitted,
}
