"""Business KPIs: what the engine tallies as it applies events, and the customer base.

Two kinds of figures, both with labels from closed sets (steps, priorities, scores,
stages, tiers), never an id:

- **Flows** (``KpiCounts``, counted once per applied event, so a redelivered event is
  not counted twice): the shopping funnel, first and second orders, tickets opened (and
  how many are complaints), first agent responses against the SLA of their priority,
  CSAT scores and NPS groups. Runners add them up and turn them into counters.
- **Stocks** (``Population``, read off the profiles held): customers by lifecycle stage
  and tier, buyers and repeat buyers.

The funnel follows a customer's purchase cycles: a cycle runs from one order to the
next (the first from the first event). Each step counts once per cycle:

``viewed``    a product viewed
``carted``    an item put into a cart
``checkout``  a checkout started
``ordered``   an order placed (a new order id), which ends the cycle

So ``carted / viewed`` is the share of browsing cycles that fill a cart and
``ordered / checkout`` the checkout completion rate, over any window. A cart abandoned
and filled again before an order is the same cycle.

>>> from datetime import UTC, datetime
>>> from schemas import events as ev
>>> from state.profile import Profile
>>> from state.reducers import apply_event
>>> tally, profile = KpiTally(), Profile(key="c1", customer_id="c1")
>>> at = datetime(2026, 1, 5, tzinfo=UTC)
>>> for event in (
...     ev.ProductViewed(event_id="e1", customer_id="c1", occurred_at=at,
...                      properties=ev.ProductViewedProperties(product_id="p1")),
...     ev.ProductViewed(event_id="e2", customer_id="c1", occurred_at=at,
...                      properties=ev.ProductViewedProperties(product_id="p2")),
...     ev.OrderPlaced(event_id="e3", customer_id="c1", occurred_at=at,
...                    properties=ev.OrderPlacedProperties(order_id="o1", total=9.5)),
... ):
...     mark = tally.before(profile, event, event.occurred_at.timestamp())
...     _ = apply_event(profile, event)
...     tally.after(profile, event, mark)
>>> dict(tally.counts.funnel), tally.counts.first_orders
({'viewed': 1, 'ordered': 1}, 1)
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schemas import events as ev
from state.policy import SupportPolicy
from state.profile import Profile
from state.service_kpis import (
    FIRST_RESPONSE_BUCKETS as FIRST_RESPONSE_BUCKETS,
    FirstResponses as FirstResponses,
    ServiceCounts,
)

FUNNEL_STEPS = ("viewed", "carted", "checkout", "ordered")
#: What became of messages (``message.*`` events), counted per channel.
MESSAGE_OUTCOMES = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")
CHANNELS = ("email", "sms", "push", "whatsapp", "in_app")
#: Distinct journey ids feedback may name before the rest count as ``other``: the sender
#: writes them, so they must not grow the metrics without bound.
MAX_JOURNEY_LABELS = 64
PRIORITIES = ("low", "normal", "high", "urgent")
#: NPS groups by score: 0-6 detractors, 7-8 passives, 9-10 promoters.
NPS_GROUPS = ("detractor", "passive", "promoter")


def nps_group(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


@dataclass
class KpiCounts:
    """Flows since the engine started (see the module docstring)."""

    funnel: Counter[str] = field(default_factory=Counter)
    #: Customers who placed their first order / their second order (became repeat buyers).
    first_orders: int = 0
    second_orders: int = 0
    #: (priority, is complaint) -> tickets opened
    tickets_opened: Counter[tuple[str, bool]] = field(default_factory=Counter)
    #: priority -> first agent responses
    first_responses: dict[str, FirstResponses] = field(default_factory=dict)
    #: CSAT score (1-5) -> ratings; NPS group -> ratings
    csat: Counter[int] = field(default_factory=Counter)
    nps: Counter[str] = field(default_factory=Counter)
    #: (channel, outcome) -> messages (``MESSAGE_OUTCOMES``)
    messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (journey, channel, outcome) -> messages, for feedback that names its journey
    journey_messages: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: The service desk: routing, sentiment, first responses by queue.
    service: ServiceCounts = field(default_factory=ServiceCounts)

    def add(self, other: KpiCounts) -> None:
        self.funnel.update(other.funnel)
        self.first_orders += other.first_orders
        self.second_orders += other.second_orders
        self.tickets_opened.update(other.tickets_opened)
        for priority, responses in other.first_responses.items():
            self.first_responses.setdefault(priority, FirstResponses()).add(responses)
        self.csat.update(other.csat)
        self.nps.update(other.nps)
        self.messages.update(other.messages)
        self.journey_messages.update(other.journey_messages)
        self.service.add(other.service)

    def message_summary(self) -> dict[str, dict[str, Any]]:
        """Per channel with any feedback: each outcome's count, and the rates of delivered
        messages opened and clicked, and of sent ones (delivered + bounced) bounced."""
        channels: dict[str, dict[str, Any]] = {}
        for channel in CHANNELS:
            counts = {outcome: self.messages[(channel, outcome)] for outcome in MESSAGE_OUTCOMES}
            if not any(counts.values()):
                continue
            delivered = counts["delivered"]
            channels[channel] = {
                **counts,
                "open_rate": _ratio(counts["opened"], delivered),
                "click_rate": _ratio(counts["clicked"], delivered),
                "bounce_rate": _ratio(counts["bounced"], delivered + counts["bounced"]),
            }
        return channels

    def journey_message_summary(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per journey and channel: what became of its messages, with open and click
        rates over the delivered ones."""
        journeys: dict[str, dict[str, dict[str, Any]]] = {}
        for (journey, channel, outcome), count in sorted(self.journey_messages.items()):
            row = journeys.setdefault(journey, {}).setdefault(
                channel, dict.fromkeys(MESSAGE_OUTCOMES, 0)
            )
            row[outcome] = count
        for channels in journeys.values():
            for row in channels.values():
                row["open_rate"] = _ratio(row["opened"], row["delivered"])
                row["click_rate"] = _ratio(row["clicked"], row["delivered"])
        return journeys

    def summary(self) -> dict[str, Any]:
        """The KPIs as a plain, JSON-ready dict: counts and the ratios derived from them."""
        funnel = {step: self.funnel[step] for step in FUNNEL_STEPS}
        conversion = {
            f"{a}->{b}": _ratio(funnel[b], funnel[a]) for a, b in itertools.pairwise(FUNNEL_STEPS)
        }
        ratings = sum(self.csat.values())
        nps_ratings = sum(self.nps.values())
        complaints = sum(n for (_, complaint), n in self.tickets_opened.items() if complaint)
        sla: dict[str, dict[str, Any]] = {}
        for priority in PRIORITIES:
            responses = self.first_responses.get(priority)
            if responses is None or not responses.count:
                continue
            sla[priority] = {
                "responses": responses.count,
                "met": responses.met,
                "met_share": _ratio(responses.met, responses.count),
                "mean_hours": round(responses.seconds / responses.count / 3600, 2),
            }
        return {
            "funnel": funnel,
            "conversion": conversion,
            "first_orders": self.first_orders,
            "second_orders": self.second_orders,
            "tickets_opened": sum(self.tickets_opened.values()),
            "complaints": complaints,
            "complaints_per_100_orders": _ratio(100 * complaints, funnel["ordered"], 2),
            "first_response_sla": sla,
            "csat_ratings": ratings,
            "csat_average": _ratio(sum(s * n for s, n in self.csat.items()), ratings, 2),
            "nps_ratings": nps_ratings,
            "nps": _ratio(100 * (self.nps["promoter"] - self.nps["detractor"]), nps_ratings, 1),
            "messages": self.message_summary(),
            "journey_messages": self.journey_message_summary(),
            "service_desk": self.service.summary(),
        }


def _ratio(part: float, whole: float, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


_Mark = Any
_Before = Callable[["KpiTally", Profile, Any, float], _Mark]


class KpiTally:
    """Counts KPI flows around ``apply_event``: ``before`` reads what the event may change,
    ``after`` compares. Both cost a dictionary lookup for event types no KPI looks at."""

    def __init__(self, support: SupportPolicy | None = None) -> None:
        self.support = support or SupportPolicy()
        self.counts = KpiCounts()
        #: Journey ids feedback has named (at most ``MAX_JOURNEY_LABELS``).
        self.journeys_named: set[str] = set()

    def before(self, profile: Profile, event: ev.Event, ts: float) -> _Mark:
        """``ts``: the event's time, as epoch seconds."""
        handler = _BEFORE.get(type(event))
        return None if handler is None else handler(self, profile, event, ts)

    def after(self, profile: Profile, event: ev.Event, mark: _Mark) -> None:
        if mark is not None:
            _AFTER[type(event)](self, profile, event, mark)

    def responded(self, profile: Profile, ticket_id: str) -> None:
        ticket = profile.support.tickets.get(ticket_id)
        if ticket is None or ticket.opened_at is None or ticket.first_response_at is None:
            return
        seconds = max(0.0, ticket.first_response_at - ticket.opened_at)
        responses = self.counts.first_responses.get(ticket.priority)
        if responses is None:
            responses = self.counts.first_responses[ticket.priority] = FirstResponses()
        sla = self.support.sla_seconds(ticket.priority)
        responses.observe(seconds, sla)
        self.counts.service.responded(ticket.queue, seconds, sla)


def _new_in_cycle(profile: Profile, kind: str, ts: float) -> bool:
    """Whether an event of ``kind`` at ``ts`` is the first of its kind in the purchase cycle."""
    last = profile.last_event_at.get(kind)
    if last is None:
        return True
    last_order = profile.orders.last_order_at
    return last_order is not None and last < last_order < ts


def _viewed(tally: KpiTally, profile: Profile, event: ev.ProductViewed, ts: float) -> None:
    if _new_in_cycle(profile, "product.viewed", ts):
        tally.counts.funnel["viewed"] += 1


def _cart_step(
    tally: KpiTally, profile: Profile, event: ev.CartItemAdded, ts: float
) -> bool | None:
    return _new_in_cycle(profile, "cart.item_added", ts) or None


def _checkout_step(
    tally: KpiTally, profile: Profile, event: ev.CheckoutStarted, ts: float
) -> bool | None:
    return _new_in_cycle(profile, "checkout.started", ts) or None


def _orders(tally: KpiTally, profile: Profile, event: ev.OrderPlaced, ts: float) -> int:
    return profile.orders.count


def _ticket_opened(
    tally: KpiTally, profile: Profile, event: ev.TicketOpened, ts: float
) -> tuple[int, int]:
    support = profile.support
    return support.opened_count, support.first_response_count


def _ticket_replied(
    tally: KpiTally, profile: Profile, event: ev.TicketReplied, ts: float
) -> int | None:
    return profile.support.first_response_count if event.properties.author == "agent" else None


def _rated(tally: KpiTally, profile: Profile, event: ev.SatisfactionRated, ts: float) -> None:
    props, counts = event.properties, tally.counts
    if props.csat is not None:
        counts.csat[props.csat] += 1
    if props.nps is not None:
        counts.nps[nps_group(props.nps)] += 1


def _carted(tally: KpiTally, profile: Profile, event: ev.CartItemAdded, mark: bool) -> None:
    cart = profile.carts.get(event.properties.cart_id)
    if cart is not None and cart.has_items:
        tally.counts.funnel["carted"] += 1


def _checked_out(tally: KpiTally, profile: Profile, event: ev.CheckoutStarted, mark: bool) -> None:
    cart = profile.carts.get(event.properties.cart_id)
    if cart is not None and cart.checkout_started_at is not None:
        tally.counts.funnel["checkout"] += 1


def _ordered(tally: KpiTally, profile: Profile, event: ev.OrderPlaced, before: int) -> None:
    if profile.orders.count > before:
        counts = tally.counts
        counts.funnel["ordered"] += 1
        counts.first_orders += before == 0
        counts.second_orders += before == 1


def _opened(
    tally: KpiTally, profile: Profile, event: ev.TicketOpened, before: tuple[int, int]
) -> None:
    opened, responded = before
    support, props = profile.support, event.properties
    if support.opened_count > opened:
        tally.counts.tickets_opened[(props.priority, props.is_complaint)] += 1
    if support.first_response_count > responded:
        tally.responded(profile, props.ticket_id)


def _replied(tally: KpiTally, profile: Profile, event: ev.TicketReplied, before: int) -> None:
    if profile.support.first_response_count > before:
        tally.responded(profile, event.properties.ticket_id)


def _message(kind: str) -> _Before:
    def count(tally: KpiTally, profile: Profile, event: Any, ts: float) -> None:
        props = event.properties
        tally.counts.messages[(props.channel, kind)] += 1
        journey = props.journey_id
        if journey is not None:
            seen = tally.journeys_named
            if journey not in seen:  # the sender names it: bounded, not trusted
                if len(seen) >= MAX_JOURNEY_LABELS:
                    journey = "other"
                else:
                    seen.add(journey)
            tally.counts.journey_messages[(journey, props.channel, kind)] += 1

    return count


_AFTER: dict[type, Callable[[KpiTally, Profile, Any, Any], None]] = {
    ev.CartItemAdded: _carted,
    ev.CheckoutStarted: _checked_out,
    ev.OrderPlaced: _ordered,
    ev.TicketOpened: _opened,
    ev.TicketReplied: _replied,
}

_BEFORE: dict[type, _Before] = {
    ev.ProductViewed: _viewed,
    ev.CartItemAdded: _cart_step,
    ev.CheckoutStarted: _checkout_step,
    ev.OrderPlaced: _orders,
    ev.TicketOpened: _ticket_opened,
    ev.TicketReplied: _ticket_replied,
    ev.SatisfactionRated: _rated,
    ev.MessageDelivered: _message("delivered"),
    ev.MessageBounced: _message("bounced"),
    ev.MessageComplained: _message("complained"),
    ev.MessageOpened: _message("opened"),
    ev.MessageClicked: _message("clicked"),
    ev.MessageUnsubscribed: _message("unsubscribed"),
}
