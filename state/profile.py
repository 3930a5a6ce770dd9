"""The live customer profile: one mutable record per customer, bounded in size.

Times are UTC epoch seconds (floats): the profile is updated on every event and
float arithmetic is several times cheaper than ``datetime`` arithmetic. Every
collection has a fixed bound (see ``LIMITS``) so a profile never grows without end.

>>> p = Profile(key="c1", customer_id="c1")
>>> p.lifecycle, p.tier, p.orders.count
('prospect', 'member', 0)
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from state.churn_state import ChurnState
from state.journey_runs import JourneyState
from state.loyalty import MAX_LOTS, MAX_REDEMPTION_IDS, Ledger  # noqa: F401 - LIMITS lists them
from state.tiers import MAX_GROWTH_MONTHS, Growth  # noqa: F401 - LIMITS lists the bound

# Bounds on every collection in a profile; the size test in tests/state pins them down.
MAX_ANONYMOUS_IDS: Final = 10
MAX_RECENT_VIEWS: Final = 10
MAX_CATEGORIES: Final = 20
AFFINITY_WINDOW_DAYS: Final = 30
MAX_OPEN_CARTS: Final = 5
MAX_CART_LINES: Final = 50
MAX_CLOSED_CARTS: Final = 20
MAX_RECENT_ORDERS: Final = 20
SPEND_MONTHS: Final = 13
MAX_TICKETS: Final = 20
MAX_TAGS: Final = 64
MAX_TAG_WINDOW_DAYS: Final = 366
MAX_RECENT_EVENT_IDS: Final = 16
LIMITS: Final = {name: value for name, value in globals().items() if name.startswith("MAX_")}

DAY: Final = 86_400.0


class Stamped(msgspec.Struct, gc=False):
    """A value with the event time that set it; the newest time wins (ties: larger event id)."""

    value: str | bool | None
    at: float
    event_id: str


class CartLine(msgspec.Struct, gc=False):
    """Net quantity of one product; it may dip below zero while a removal outruns its add."""

    product_id: str
    quantity: int
    price_cents: int
    priced_at: float
    category: str | None = None
    #: The product's name as the newest priced add gave it (for messages).
    name: str | None = None


class Cart(msgspec.Struct):
    cart_id: str
    opened_at: float
    last_touched_at: float
    lines: dict[str, CartLine] = {}
    checkout_started_at: float | None = None

    @property
    def value(self) -> float:
        cents = 0
        for line in self.lines.values():
            if line.quantity > 0:
                cents += line.quantity * line.price_cents
        return cents / 100

    @property
    def item_count(self) -> int:
        return sum([line.quantity for line in self.lines.values() if line.quantity > 0])

    @property
    def has_items(self) -> bool:
        for line in self.lines.values():  # noqa: SIM110 - cheaper than any() on a hot path
            if line.quantity > 0:
                return True
        return False


class View(msgspec.Struct, gc=False, array_like=True):
    at: float
    product_id: str
    category: str | None


class OrderRecord(msgspec.Struct, gc=False):
    order_id: str
    placed_at: float | None = None
    total_cents: int = 0
    #: The carts the order ended (``state/reducers.py``: how an order finds its cart).
    carts: list[str] = []
    cancelled: bool = False
    #: A cancellation without an amount arrived before the order: apply its total on arrival.
    cancel_amount_pending: bool = False


class Orders(msgspec.Struct):
    """Lifetime order aggregates plus the most recent orders for look-ups and gaps.

    Money is integer cents so that sums are exact and do not depend on arrival order.
    """

    count: int = 0
    revenue_cents: int = 0
    cancelled_count: int = 0
    cancelled_cents: int = 0
    refund_count: int = 0
    refunded_cents: int = 0
    first_order_at: float | None = None
    last_order_at: float | None = None
    #: The order before the last one: the gap between them tells a win-back.
    previous_order_at: float | None = None
    recent: dict[str, OrderRecord] = {}
    #: Net spend in cents per calendar month (``year*12 + month-1``), for tiers.
    spend_by_month: dict[int, int] = {}

    @property
    def revenue(self) -> float:
        return self.revenue_cents / 100

    @property
    def cancelled_amount(self) -> float:
        return self.cancelled_cents / 100

    @property
    def refunded_amount(self) -> float:
        return self.refunded_cents / 100

    @property
    def net_revenue(self) -> float:
        return (self.revenue_cents - self.cancelled_cents - self.refunded_cents) / 100

    @property
    def average_order_value(self) -> float:
        return round(self.revenue_cents / self.count / 100, 2) if self.count else 0.0


class Ticket(msgspec.Struct, gc=False, omit_defaults=True):
    ticket_id: str
    priority: str = "normal"
    opened_at: float | None = None
    first_response_at: float | None = None
    resolved_at: float | None = None
    is_complaint: bool = False
    #: What routing made of it (``rules/routing.yaml``): category and queue, and the
    #: sentiment of its opening text (-1..1), when known.
    category: str | None = None
    queue: str | None = None
    sentiment: float | None = None
    #: Suggested answers (ids in solutions.yaml) routing attached for the agent.
    answers: list[str] = []
    #: The opening of its subject, only with ``privacy.keep_text_chars`` above 0: text is
    #: personal data, and by default none of it is kept.
    excerpt: str | None = None

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None and self.resolved_at is None


class Support(msgspec.Struct):
    tickets: dict[str, Ticket] = {}
    opened_count: int = 0
    resolved_count: int = 0
    complaint_count: int = 0
    first_response_count: int = 0
    first_response_seconds_total: float = 0.0
    csat_count: int = 0
    csat_total: int = 0
    last_csat: Stamped | None = None
    nps_count: int = 0
    nps_promoters: int = 0
    nps_detractors: int = 0
    review_count: int = 0
    review_rating_total: int = 0
    #: Sentiment (-1..1) of what the customer wrote: tickets, their own replies, rating
    #: comments and reviews. The total is in ten-thousandths, so it is exact in any order.
    sentiment_count: int = 0
    sentiment_total_e4: int = 0
    #: The newest text's score, by event time.
    last_sentiment: Stamped | None = None

    @property
    def csat_average(self) -> float | None:
        return round(self.csat_total / self.csat_count, 2) if self.csat_count else None

    @property
    def nps(self) -> float | None:
        """Net promoter score, -100..100."""
        if not self.nps_count:
            return None
        return round(100 * (self.nps_promoters - self.nps_detractors) / self.nps_count, 1)

    @property
    def review_average(self) -> float | None:
        return round(self.review_rating_total / self.review_count, 2) if self.review_count else None

    @property
    def sentiment_average(self) -> float | None:
        if not self.sentiment_count:
            return None
        return round(self.sentiment_total_e4 / self.sentiment_count / 10_000, 4)

    @property
    def sentiment_recent(self) -> float | None:
        last = self.last_sentiment
        return float(last.value) if last is not None and isinstance(last.value, str) else None

    @property
    def open_tickets(self) -> list[Ticket]:
        return [t for t in self.tickets.values() if t.is_open]


class Rfm(msgspec.Struct, gc=False):
    recency: int = 0
    frequency: int = 0
    monetary: int = 0
    segment: str = "none"


class Reach(msgspec.Struct, gc=False, omit_defaults=True):
    """What became of the messages sent to a customer on one channel."""

    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    soft_bounces: int = 0
    hard_bounces: int = 0
    complaints: int = 0
    last_delivered_at: float | None = None
    #: The newest open or click.
    last_engaged_at: float | None = None
    #: The newest hard bounce or spam complaint: the channel cannot reach the customer
    #: from then on, unless the address changed after it (``readdressed_at``).
    unreachable_at: float | None = None
    unreachable_reason: Literal["hard_bounce", "complaint"] | None = None
    #: The newest change of the channel's address (a new email or phone number).
    readdressed_at: float | None = None

    @property
    def reachable(self) -> bool:
        blocked = self.unreachable_at
        return blocked is None or (
            self.readdressed_at is not None and self.readdressed_at > blocked
        )


class Profile(msgspec.Struct):
    """Everything Rapport knows about one customer (or one anonymous visitor)."""

    key: str
    customer_id: str | None = None
    anonymous_ids: list[str] = []
    first_seen_at: float | None = None
    last_seen_at: float | None = None
    #: A late event counts, for retention, as activity at the moment it arrived (the
    #: watermark then): a profile is anonymised only once it has been dormant that long.
    retained_from: float | None = None
    #: The profile's own clock: the newest event or timer applied. Derived fields are as of it.
    as_of: float = 0.0
    registered_at: float | None = None
    traits: dict[str, Stamped] = {}
    consent: dict[str, Stamped] = {}
    event_counts: dict[str, int] = {}
    last_event_at: dict[str, float] = {}
    recent_views: list[View] = []
    #: Views per category per day number, inside the affinity window.
    category_views: dict[str, dict[int, int]] = {}
    carts: dict[str, Cart] = {}
    #: Carts closed by an order, a clear or the open-cart bound: cart id -> earliest close time.
    #: Later events for a closed cart are ignored, so a late add cannot reopen it.
    closed_carts: dict[str, float] = {}
    #: Carts closed because more than ``MAX_OPEN_CARTS`` were open (the stalest go first).
    carts_evicted: int = 0
    orders: Orders = msgspec.field(default_factory=Orders)
    support: Support = msgspec.field(default_factory=Support)
    rfm: Rfm = msgspec.field(default_factory=Rfm)
    lifecycle: str = "prospect"
    tier: str = "member"
    #: The next tier up and the net spend it still takes in the qualifying window, in
    #: cents (None at the top tier); kept with the tier (``state/derived.py``).
    next_tier: str | None = None
    to_next_tier_cents: int | None = None
    #: With tiers on growth value: the growth value the next tier still takes (and
    #: ``to_next_tier_cents`` is None), and what growth counts beyond spend.
    to_next_tier_growth: int | None = None
    growth: Growth = msgspec.field(default_factory=Growth)
    #: A customer below their tier keeps it until then (``downgrade_grace_days``).
    tier_grace_until: float | None = None
    #: Marketer-defined tags, sorted; when each was added is on its ``tag_added`` change.
    tags: list[str] = []
    #: Per windowed tag: matching events per day number.
    tag_activity: dict[str, dict[int, int]] = {}
    #: When derived fields must be looked at again even without new events.
    next_review_at: float | None = None
    #: Journey runs in progress, entries, goal windows and recent sends.
    journeys: JourneyState = msgspec.field(default_factory=JourneyState)
    #: Per channel: deliveries, engagement and whether it still reaches the customer.
    reach: dict[str, Reach] = {}
    #: Churn snapshots waiting for their label, and the current risk (``churn/``).
    churn: ChurnState = msgspec.field(default_factory=ChurnState)
    #: The points ledger, when the rules have a loyalty program (``state/loyalty.py``).
    points: Ledger | None = None
    #: Digests of the newest events applied to this profile (``state/dedup.py``), packed,
    #: oldest first. Stored with the profile, so an event redelivered after a worker
    #: restart is recognised and skipped.
    recent_events: bytes = b""
    #: (event time, event id) of the newest event applied in event-time order. Events are
    #: applied in that order, so one read again after a restart and not above this mark
    #: was applied before.
    applied_through: tuple[float, str] | None = None
    #: Anonymous keys whose profile is on its way from another partition (``state/handoff.py``).
    #: While any is awaited, this profile's events are held and applied when it arrives.
    awaiting: list[str] = []

    @property
    def open_cart(self) -> Cart | None:
        """The most recently touched cart that still has items."""
        best: Cart | None = None
        for cart in self.carts.values():
            if not cart.has_items:
                continue
            if (
                best is None
                or cart.last_touched_at > best.last_touched_at
                or (cart.last_touched_at == best.last_touched_at and cart.cart_id > best.cart_id)
            ):
                best = cart
        return best

    @property
    def category_affinity(self) -> dict[str, float]:
        """Share of views per category in the affinity window, largest first."""
        totals = {cat: sum(days.values()) for cat, days in self.category_views.items()}
        grand = sum(totals.values())
        if not grand:
            return {}
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        return {cat: round(count / grand, 4) for cat, count in ranked}

    def trait(self, name: str) -> str | bool | None:
        stamped = self.traits.get(name)
        return None if stamped is None else stamped.value

    def reachable(self, channel: str) -> bool:
        """No hard bounce or complaint on ``channel`` since its address last changed."""
        reach = self.reach.get(channel)
        return reach is None or reach.reachable

    def has_consent(self, channel: str) -> bool:
        stamped = self.consent.get(channel)
        return bool(stamped is not None and stamped.value)
