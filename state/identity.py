"""Folding an anonymous visitor's profile into the customer's when they identify.

The merge is commutative with the reducers: events before and after the link land in
the same final profile whichever arrives first.

>>> from state.profile import Profile
>>> customer, visitor = Profile(key="c1", customer_id="c1"), Profile(key="anon:a1")
>>> visitor.event_counts["product.viewed"] = 3
>>> merge_profiles(customer, visitor).event_counts
{'product.viewed': 3}
"""

from __future__ import annotations

from state.dedup import merge_recent
from state.journey_runs import (
    MAX_COUPONS_KEPT,
    MAX_GOAL_WATCHES,
    MAX_RUNS,
    MAX_SENDS_KEPT,
    JourneyHistory,
    JourneyState,
)
from state.loyalty import merge_ledgers
from state.profile import (
    DAY,
    MAX_CART_LINES,
    MAX_RECENT_EVENT_IDS,
    MAX_RECENT_VIEWS,
    Profile,
    Stamped,
)
from state.reducers import (
    add_buckets,
    advance_profile_clock,
    close_cart,
    enforce_cart_bound,
    enforce_category_bound,
    enforce_order_bound,
    enforce_ticket_bound,
    prune_windows,
    remember_anonymous_id,
)
from state.tiers import Growth


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _lww(into: dict[str, Stamped], other: dict[str, Stamped]) -> None:
    for name, stamp in other.items():
        mine = into.get(name)
        if mine is None or (stamp.at, stamp.event_id) > (mine.at, mine.event_id):
            into[name] = stamp


def merge_profiles(target: Profile, source: Profile) -> Profile:
    """Add everything ``source`` knows to ``target`` and return ``target``."""
    for anonymous_id in source.anonymous_ids:
        remember_anonymous_id(target, anonymous_id)
    if source.key.startswith("anon:"):
        remember_anonymous_id(target, source.key.removeprefix("anon:"))
    target.first_seen_at = _min(target.first_seen_at, source.first_seen_at)
    target.last_seen_at = _max(target.last_seen_at, source.last_seen_at)
    target.retained_from = _max(target.retained_from, source.retained_from)
    target.registered_at = _min(target.registered_at, source.registered_at)
    _lww(target.traits, source.traits)
    _lww(target.consent, source.consent)
    for kind, count in source.event_counts.items():
        target.event_counts[kind] = target.event_counts.get(kind, 0) + count
    for kind, at in source.last_event_at.items():
        target.last_event_at[kind] = max(target.last_event_at.get(kind, at), at)
    views = sorted(target.recent_views + source.recent_views, key=lambda v: (v.at, v.product_id))
    target.recent_views = views[-MAX_RECENT_VIEWS:]
    for category, days in source.category_views.items():
        add_buckets(target.category_views.setdefault(category, {}), days)
    enforce_category_bound(target)
    _merge_carts(target, source)
    _merge_orders(target, source)
    _merge_support(target, source)
    for tag, days in source.tag_activity.items():
        add_buckets(target.tag_activity.setdefault(tag, {}), days)
    _merge_journeys(target.journeys, source.journeys)
    _merge_reach(target, source)
    target.points = merge_ledgers(target.points, source.points)
    _merge_growth(target.growth, source.growth)
    target.recent_events = merge_recent(
        target.recent_events, source.recent_events, MAX_RECENT_EVENT_IDS
    )
    if source.applied_through is not None and (
        target.applied_through is None or source.applied_through > target.applied_through
    ):
        target.applied_through = source.applied_through
    advance_profile_clock(target, source.as_of)
    prune_windows(target, int(target.as_of // DAY))
    return target


def _merge_journeys(mine: JourneyState, theirs: JourneyState) -> None:
    """A visitor's journeys continue as the customer's (a cart left before login, say)."""
    for key, run in theirs.runs.items():
        if key not in mine.runs and len(mine.runs) < MAX_RUNS:
            mine.runs[key] = run
    for journey_id, history in theirs.history.items():
        own = mine.history.setdefault(journey_id, JourneyHistory())
        own.entries += history.entries
        own.last_entered_at = _max(own.last_entered_at, history.last_entered_at)
    mine.goal_watches = (mine.goal_watches + theirs.goal_watches)[-MAX_GOAL_WATCHES:]
    for key, at in theirs.exits_seen.items():
        mine.exits_seen[key] = min(mine.exits_seen.get(key, at), at)
    for channel, times in theirs.sends.items():
        mine.sends[channel] = sorted(mine.sends.get(channel, []) + times)[-MAX_SENDS_KEPT:]
    if theirs.coupons:  # a code a visitor was sent is still theirs once they log in
        seen = {c.action_id for c in mine.coupons}
        both = mine.coupons + [c for c in theirs.coupons if c.action_id not in seen]
        both.sort(key=lambda c: (c.issued_at, c.action_id))
        mine.coupons = both[-MAX_COUPONS_KEPT:]
    times = [t for t in (mine.next_due_at, theirs.next_due_at) if t is not None]
    mine.next_due_at = min(times) if times else None


def _merge_growth(mine: Growth, theirs: Growth) -> None:
    """A visitor's reviews and check-ins count towards the customer's growth value (a day
    checked in as both counts twice: rare, and never more than one day)."""
    add_buckets(mine.reviews_by_month, theirs.reviews_by_month)
    add_buckets(mine.check_ins_by_month, theirs.check_ins_by_month)
    days = [d for d in (mine.last_check_in, theirs.last_check_in) if d is not None]
    mine.last_check_in = max(days) if days else None


def _merge_reach(target: Profile, source: Profile) -> None:
    for channel, theirs in source.reach.items():
        mine = target.reach.get(channel)
        if mine is None:
            target.reach[channel] = theirs
            continue
        mine.delivered += theirs.delivered
        mine.opened += theirs.opened
        mine.clicked += theirs.clicked
        mine.soft_bounces += theirs.soft_bounces
        mine.hard_bounces += theirs.hard_bounces
        mine.complaints += theirs.complaints
        mine.last_delivered_at = _max(mine.last_delivered_at, theirs.last_delivered_at)
        mine.last_engaged_at = _max(mine.last_engaged_at, theirs.last_engaged_at)
        mine.readdressed_at = _max(mine.readdressed_at, theirs.readdressed_at)
        if theirs.unreachable_at is not None and (
            mine.unreachable_at is None or theirs.unreachable_at > mine.unreachable_at
        ):
            mine.unreachable_at = theirs.unreachable_at
            mine.unreachable_reason = theirs.unreachable_reason


def _merge_carts(target: Profile, source: Profile) -> None:
    for cart_id, at in source.closed_carts.items():
        close_cart(target, cart_id, at)
    closed = target.closed_carts
    target.carts_evicted += source.carts_evicted
    for cart_id, cart in source.carts.items():
        if cart_id in closed:
            continue
        mine = target.carts.get(cart_id)
        if mine is None:
            target.carts[cart_id] = cart
            continue
        mine.opened_at = min(mine.opened_at, cart.opened_at)
        mine.last_touched_at = max(mine.last_touched_at, cart.last_touched_at)
        mine.checkout_started_at = _min(mine.checkout_started_at, cart.checkout_started_at)
        for product_id, line in cart.lines.items():
            own = mine.lines.get(product_id)
            if own is None:
                if len(mine.lines) < MAX_CART_LINES:
                    mine.lines[product_id] = line
                continue
            own.quantity += line.quantity
            if line.priced_at > own.priced_at:
                own.price_cents, own.priced_at = line.price_cents, line.priced_at
            if own.quantity == 0 and own.priced_at >= 0:
                del mine.lines[product_id]
    for cart_id in [c for c in target.carts if c in closed]:
        del target.carts[cart_id]
    enforce_cart_bound(target)


def _merge_orders(target: Profile, source: Profile) -> None:
    mine, theirs = target.orders, source.orders
    mine.count += theirs.count
    mine.revenue_cents += theirs.revenue_cents
    mine.cancelled_count += theirs.cancelled_count
    mine.cancelled_cents += theirs.cancelled_cents
    mine.refund_count += theirs.refund_count
    mine.refunded_cents += theirs.refunded_cents
    mine.first_order_at = _min(mine.first_order_at, theirs.first_order_at)
    times = {
        t
        for t in (
            mine.last_order_at,
            mine.previous_order_at,
            theirs.last_order_at,
            theirs.previous_order_at,
        )
        if t is not None
    }
    top = sorted(times, reverse=True)
    mine.last_order_at = top[0] if top else None
    mine.previous_order_at = top[1] if len(top) > 1 else None
    mine.recent.update(theirs.recent)
    enforce_order_bound(mine)
    add_buckets(mine.spend_by_month, theirs.spend_by_month)


def _merge_support(target: Profile, source: Profile) -> None:
    mine, theirs = target.support, source.support
    mine.tickets.update(theirs.tickets)
    enforce_ticket_bound(mine)
    for name in (
        "opened_count",
        "resolved_count",
        "complaint_count",
        "first_response_count",
        "first_response_seconds_total",
        "csat_count",
        "csat_total",
        "nps_count",
        "nps_promoters",
        "nps_detractors",
        "review_count",
        "review_rating_total",
    ):
        setattr(mine, name, getattr(mine, name) + getattr(theirs, name))
    if theirs.last_csat is not None and (
        mine.last_csat is None
        or (theirs.last_csat.at, theirs.last_csat.event_id)
        > (mine.last_csat.at, mine.last_csat.event_id)
    ):
        mine.last_csat = theirs.last_csat
