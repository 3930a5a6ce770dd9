"""The service desk, as events are applied: what customers and agents write is read once,
and a new ticket is classified and routed.

``ServiceDesk.read`` runs just before an event with text is folded in (``engine/fold.py``):

- **Sentiment.** The text of a ticket (subject and body), a reply, a rating's comment or a
  review is scored (``sentiment/``), unless the event came with a ``sentiment``. The score
  goes on the event, so the profile keeps it (recent and average, ``state/reducers``)
  and journeys read ``event.sentiment``.
- **Routing.** A ticket opening for the first time is classified and routed by
  ``routing.yaml`` (``rules/routing.py``) against the profile as it was before it; the
  decision goes on the event (``category``, ``queue``, the routed ``priority``) and out as
  a ``TicketRouted`` with the rules that made it. The same ticket opened again keeps what
  was decided the first time.

Scoring is inline: about 20-100 µs a text, on one event in a few hundred
(``bench/sentiment_cost.py``). Raw text is dropped here unless
``privacy.keep_text_chars`` keeps the opening of a ticket's subject.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import msgspec

from rules.actions import routing_id
from rules.routing import Routing, TicketRouted, sentiment_band
from rules.routing_spec import SentimentBandsSpec
from schemas import events as ev
from sentiment import detect_language, score_text
from state.profile import Profile

if TYPE_CHECKING:
    from engine.core import Engine

#: The events whose text is read, and what each is called in the figures.
TEXT_KINDS: Final[dict[type[Any], str]] = {
    ev.TicketOpened: "ticket",
    ev.TicketReplied: "reply",
    ev.SatisfactionRated: "rating",
    ev.ReviewSubmitted: "review",
}
_DEFAULT_BANDS: Final = SentimentBandsSpec()


def band_of(routing: Routing | None, score: float | None) -> str:
    """The sentiment band of ``score``, by routing.yaml's bands (or their defaults)."""
    if routing is not None:
        return routing.band(score)
    bands = _DEFAULT_BANDS
    return sentiment_band(score, bands.very_negative, bands.negative, bands.positive)


def _month(ts: float) -> int:
    day = datetime.fromtimestamp(ts, UTC)
    return day.year * 12 + day.month - 1


class ServiceDesk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def read(self, profile: Profile, event: Any, ts: float) -> tuple[Any, list[TicketRouted]]:
        """The event as the fold should apply it (scored, routed), and the routing decision."""
        cls = type(event)
        props = event.properties
        routing = self.engine.rules.routing
        counts = self.engine.kpis.counts.service
        changes: dict[str, Any] = {}
        text = props.scored_text()
        score, language = props.sentiment, None
        if text is not None:
            if score is None and self.engine.config.score_sentiment:
                found = score_text(text, props.language)
                if found is not None:
                    score, language = found.score, found.language
                    changes["sentiment"] = score
            elif score is not None:
                language = detect_language(text, props.language)
        band = band_of(routing, score)
        if text is not None or score is not None:
            customers = cls is not ev.TicketReplied or props.author == "customer"
            counts.text(
                TEXT_KINDS[cls],
                language or "other",
                band,
                score,
                profile.rfm.segment if customers else None,
                _month(ts) if customers else None,
            )
        routed: list[TicketRouted] = []
        if cls is ev.TicketOpened:
            ticket = profile.support.tickets.get(props.ticket_id)
            if ticket is not None and ticket.opened_at is not None:
                kept = {"category": ticket.category, "queue": ticket.queue}
                changes.update({k: v for k, v in kept.items() if v is not None})
                changes["priority"] = ticket.priority
            elif routing is not None:
                decision = self._route(
                    routing,
                    profile,
                    event,
                    msgspec.structs.replace(props, **changes),
                    ts,
                    band,
                    language,
                )
                changes.update(
                    category=decision.category, queue=decision.queue, priority=decision.priority
                )
                routed.append(decision)
                counts.ticket(decision.category, decision.queue, band)
            else:
                counts.ticket(props.category or "none", props.queue or "none", band)
        if changes:
            event = msgspec.structs.replace(
                event, properties=msgspec.structs.replace(props, **changes)
            )
        return event, routed

    @staticmethod
    def _route(
        routing: Routing,
        profile: Profile,
        event: ev.TicketOpened,
        props: ev.TicketOpenedProperties,
        ts: float,
        band: str,
        language: str | None,
    ) -> TicketRouted:
        if props.category is not None:
            category, by, keyword = props.category, "event", None
        else:
            category, by, keyword = routing.classify(props.scored_text(), props.topic)
            props = msgspec.structs.replace(props, category=category)
        queue, queue_rule, priority, priority_rule = routing.route(profile, props)
        return TicketRouted(
            decision_id=routing_id(profile.key, props.ticket_id, event.event_id),
            profile_key=profile.key,
            customer_id=profile.customer_id,
            ticket_id=props.ticket_id,
            at=ts,
            cause=event.event_id,
            category=category,
            category_by=by,
            keyword=keyword,
            queue=queue,
            queue_rule=queue_rule,
            priority=priority,
            requested_priority=event.properties.priority,
            priority_rule=priority_rule,
            sentiment=props.sentiment,
            band=band,
            language=language,
            answers=routing.answers_for(category),
        )

    @staticmethod
    def settle(
        profile: Profile, event: ev.TicketOpened, routed: list[TicketRouted], keep_chars: int
    ) -> None:
        """After the ticket is on the profile: its suggested answers, and with
        ``privacy.keep_text_chars`` the opening of its subject (or body)."""
        props = event.properties
        ticket = profile.support.tickets.get(props.ticket_id)
        if ticket is None:
            return
        for decision in routed:
            ticket.answers = list(decision.answers)
        opening = (props.subject or props.body or "")[:keep_chars].strip() if keep_chars else ""
        if opening and ticket.excerpt is None:
            ticket.excerpt = opening
