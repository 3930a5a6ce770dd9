"""Reducers: how each event kind changes a profile.

``apply_event(profile, event)`` is deterministic and does no I/O: it reads nothing but
its arguments. It updates the profile in place and returns it (copying a profile per
event would cost more than the rest of the pipeline). Every update is commutative
where the business meaning allows it: sums, minimums, maximums, keyed records and
last-writer-wins by event time, so arrival order does not change the result.

>>> from schemas.events import OrderPlaced
>>> import msgspec
>>> order = msgspec.convert({"type": "order.placed", "event_id": "e1", "customer_id": "c1",
...     "occurred_at": "2026-03-01T10:00:00Z",
...     "properties": {"order_id": "o1", "total": 42.5}}, OrderPlaced)
>>> profile = apply_event(Profile(key="c1"), order)
>>> profile.orders.count, profile.orders.revenue
(1, 42.5)
"""

from __future__ import annotations

import hashlib
import hmac
from bisect import insort
from collections.abc import Callable
from typing import Any, Final

from schemas import events as ev
from state.profile import (
    AFFINITY_WINDOW_DAYS,
    DAY,
    MAX_ANONYMOUS_IDS,
    MAX_CART_LINES,
    MAX_CATEGORIES,
    MAX_CLOSED_CARTS,
    MAX_OPEN_CARTS,
    MAX_RECENT_ORDERS,
    MAX_RECENT_VIEWS,
    MAX_TICKETS,
    Cart,
    CartLine,
    OrderRecord,
    Orders,
    Profile,
    Stamped,
    Support,
    Ticket,
    View,
)
from state.tiers import month_index

PROMOTER_MIN: Final = 9
DETRACTOR_MAX: Final = 6


def cents(amount: float) -> int:
    """Money to integer cents, rounding half away from zero like a till."""
    return int(amount * 100 + (0.5 if amount >= 0 else -0.5))


#: Makes the digest of a contact (an email or phone as given): ``privacy.contact_key``'s.
ContactDigest = Callable[[str], str]


def contact_digest(key: bytes, key_id: str) -> ContactDigest:
    """A keyed pseudonym for an email or phone: ``<key id>:<hex HMAC-SHA256>`` of the
    trimmed, lower-cased value. Without the key nobody can test a guess against it (an
    unkeyed hash of an address is undone by hashing a list of addresses).

    >>> digest = contact_digest(b"k" * 32, "k1")
    >>> digest(" Ann@Example.com ") == digest("ann@example.com"), digest("a@b.c")[:3]
    (True, 'k1:')
    """

    def make(value: str) -> str:
        mac = hmac.new(key, value.strip().lower().encode(), hashlib.sha256)
        return f"{key_id}:{mac.hexdigest()}"

    return make


def newer(stamp: Stamped | None, at: float, event_id: str) -> bool:
    """True when (at, event_id) should replace ``stamp`` under last-writer-wins."""
    return stamp is None or (at, event_id) > (stamp.at, stamp.event_id)


# --- clock and windows ------------------------------------------------------------------------


def advance_profile_clock(profile: Profile, ts: float) -> None:
    """Move the profile's clock forward; windows are pruned when the day changes."""
    before = profile.as_of
    if ts <= before:
        return
    profile.as_of = ts
    if ts // DAY != before // DAY:
        prune_windows(profile, int(ts // DAY))


def prune_windows(profile: Profile, today: int) -> None:
    """Drop day buckets that no window can count any more (keeps the profile bounded)."""
    category_views = profile.category_views
    if category_views:
        oldest = today - AFFINITY_WINDOW_DAYS + 1
        for category, days in list(category_views.items()):
            if next(iter(days)) < oldest and not drop_days_before(days, oldest):
                del category_views[category]
    spend = profile.orders.spend_by_month
    if spend:
        drop_days_before(spend, month_index(profile.as_of) - 12 + 1)


# --- day buckets: dicts of {day or month number: count} kept in ascending key order ----------


def count_on(buckets: dict[int, int], key: int, amount: int = 1) -> None:
    """Add ``amount`` to one bucket, keeping the keys ascending (pruning pops from the front)."""
    current = buckets.get(key)
    if current is not None:
        buckets[key] = current + amount
    elif not buckets or key > next(reversed(buckets)):
        buckets[key] = amount  # the usual case: time moves forward
    else:
        buckets[key] = amount
        ordered = sorted(buckets.items())
        buckets.clear()
        buckets.update(ordered)


def add_buckets(into: dict[int, int], other: dict[int, int]) -> None:
    for key, amount in other.items():
        count_on(into, key, amount)


def drop_days_before(buckets: dict[int, int], oldest: int) -> int:
    """Delete the buckets with keys below ``oldest``; return how many are left."""
    while buckets:
        first = next(iter(buckets))
        if first >= oldest:
            break
        del buckets[first]
    return len(buckets)


# --- common -----------------------------------------------------------------------------------


_KIND: Final = {cls: tag for tag, cls in ev.EVENT_TYPES.items()}
_NEVER: Final = float("-inf")


def _touch(profile: Profile, event: ev.Event, ts: float) -> None:
    kind = _KIND[type(event)]
    counts = profile.event_counts
    counts[kind] = counts.get(kind, 0) + 1
    last_at = profile.last_event_at
    if ts > last_at.get(kind, _NEVER):
        last_at[kind] = ts
    first = profile.first_seen_at
    if first is None or ts < first:
        profile.first_seen_at = ts
    last = profile.last_seen_at
    if last is None or ts > last:
        profile.last_seen_at = ts
    if profile.customer_id is None and event.customer_id is not None:
        profile.customer_id = event.customer_id
    if ts > profile.as_of:
        advance_profile_clock(profile, ts)


# --- browse -----------------------------------------------------------------------------------


def _view_order(view: View) -> tuple[float, str]:
    return view.at, view.product_id


def _product_viewed(profile: Profile, event: ev.ProductViewed, ts: float) -> None:
    props = event.properties
    views = profile.recent_views
    view = View(ts, props.product_id, props.category)
    if not views or (ts, props.product_id) >= _view_order(views[-1]):
        views.append(view)  # the usual case: views arrive in time order
    else:
        insort(views, view, key=_view_order)
    if len(views) > MAX_RECENT_VIEWS:
        del views[0]
    category = props.category
    if category is None:
        return
    day = int(ts // DAY)
    if day <= int(profile.as_of // DAY) - AFFINITY_WINDOW_DAYS:
        return  # older than the affinity window
    category_views = profile.category_views
    days = category_views.get(category)
    if days is None:
        category_views[category] = {day: 1}
        if len(category_views) > MAX_CATEGORIES:
            enforce_category_bound(profile)
    else:
        count_on(days, day)


# --- bounds: one eviction rule per collection, shared with the identity merge -------------------


def enforce_category_bound(profile: Profile) -> None:
    """Keep the categories with the most views in the window."""
    views = profile.category_views
    while len(views) > MAX_CATEGORIES:
        weakest = min(views.items(), key=lambda item: (sum(item[1].values()), item[0]))[0]
        del views[weakest]


def enforce_cart_bound(profile: Profile) -> None:
    """Close the least recently touched carts; closed, late events cannot bring them back."""
    while len(profile.carts) > MAX_OPEN_CARTS:
        stalest = min(profile.carts.values(), key=lambda c: (c.last_touched_at, c.cart_id))
        close_cart(profile, stalest.cart_id, stalest.last_touched_at)
        profile.carts_evicted += 1


def enforce_order_bound(orders: Orders) -> None:
    """Keep the most recent orders for look-ups."""
    recent = orders.recent
    while len(recent) > MAX_RECENT_ORDERS:
        oldest = min(recent.values(), key=lambda r: (r.placed_at or 0.0, r.order_id))
        del recent[oldest.order_id]


def enforce_ticket_bound(support: Support) -> None:
    """Forget resolved tickets first, then the oldest."""
    tickets = support.tickets
    while len(tickets) > MAX_TICKETS:
        victim = min(
            tickets.values(),
            key=lambda t: (t.resolved_at is None, t.opened_at or 0.0, t.ticket_id),
        )
        del tickets[victim.ticket_id]


def _search_performed(profile: Profile, event: ev.SearchPerformed, ts: float) -> None:
    """Searches are counted by ``_touch``; the query itself is not kept (it may hold PII)."""


# --- cart -------------------------------------------------------------------------------------


def _cart(profile: Profile, cart_id: str, ts: float) -> Cart | None:
    """The cart to update, created if new; None when that cart was already closed."""
    cart = profile.carts.get(cart_id)
    if cart is not None:
        cart.opened_at = min(cart.opened_at, ts)
        cart.last_touched_at = max(cart.last_touched_at, ts)
        return cart
    if cart_id in profile.closed_carts:
        return None
    cart = profile.carts[cart_id] = Cart(cart_id=cart_id, opened_at=ts, last_touched_at=ts)
    enforce_cart_bound(profile)
    return cart if cart_id in profile.carts else None


def close_cart(profile: Profile, cart_id: str, at: float) -> None:
    """Close a cart for good; the earliest close time wins, the newest closes are kept."""
    profile.carts.pop(cart_id, None)
    closed = profile.closed_carts
    known = closed.get(cart_id)
    if known is None or at < known:
        closed[cart_id] = at
        if len(closed) > MAX_CLOSED_CARTS:
            oldest = min(closed.items(), key=lambda item: (item[1], item[0]))[0]
            del closed[oldest]


def _adjust_line(
    cart: Cart,
    product_id: str,
    quantity: int,
    ts: float,
    price: float | None = None,
    category: str | None = None,
) -> None:
    line = cart.lines.get(product_id)
    if line is None:
        if len(cart.lines) >= MAX_CART_LINES:
            return
        line = cart.lines[product_id] = CartLine(product_id, 0, 0, -1.0, category)
    line.quantity += quantity
    if price is not None and ts >= line.priced_at:
        line.price_cents, line.priced_at = cents(price), ts
        line.category = category or line.category
    if line.quantity == 0 and line.priced_at >= 0:
        del cart.lines[product_id]


def _cart_item_added(profile: Profile, event: ev.CartItemAdded, ts: float) -> None:
    props = event.properties
    cart = _cart(profile, props.cart_id, ts)
    if cart is not None:
        _adjust_line(cart, props.product_id, props.quantity, ts, props.price, props.category)


def _cart_item_removed(profile: Profile, event: ev.CartItemRemoved, ts: float) -> None:
    props = event.properties
    cart = _cart(profile, props.cart_id, ts)
    if cart is not None:
        _adjust_line(cart, props.product_id, -props.quantity, ts)


def _cart_cleared(profile: Profile, event: ev.CartCleared, ts: float) -> None:
    close_cart(profile, event.properties.cart_id, ts)


def _checkout_started(profile: Profile, event: ev.CheckoutStarted, ts: float) -> None:
    cart = _cart(profile, event.properties.cart_id, ts)
    if cart is not None and (cart.checkout_started_at is None or ts < cart.checkout_started_at):
        cart.checkout_started_at = ts


# --- orders -----------------------------------------------------------------------------------


def _order_record(profile: Profile, order_id: str) -> OrderRecord:
    recent = profile.orders.recent
    record = recent.get(order_id)
    if record is None:
        record = recent[order_id] = OrderRecord(order_id=order_id)
        enforce_order_bound(profile.orders)
    return record


def _add_spend(profile: Profile, ts: float, amount_cents: int) -> None:
    month = month_index(ts)
    if month <= month_index(profile.as_of) - 12:
        return
    count_on(profile.orders.spend_by_month, month, amount_cents)


def _cancel(profile: Profile, ts: float, amount_cents: int) -> None:
    orders = profile.orders
    orders.cancelled_count += 1
    orders.cancelled_cents += amount_cents
    _add_spend(profile, ts, -amount_cents)


def _order_placed(profile: Profile, event: ev.OrderPlaced, ts: float) -> None:
    props = event.properties
    record = _order_record(profile, props.order_id)
    if record.placed_at is not None:
        return  # the same order delivered again under another event id
    total = cents(props.total)
    record.placed_at, record.total_cents = ts, total
    orders = profile.orders
    orders.count += 1
    orders.revenue_cents += total
    if orders.first_order_at is None or ts < orders.first_order_at:
        orders.first_order_at = ts
    if orders.last_order_at is None or ts > orders.last_order_at:
        orders.previous_order_at, orders.last_order_at = orders.last_order_at, ts
    elif orders.previous_order_at is None or ts > orders.previous_order_at:
        orders.previous_order_at = ts
    _add_spend(profile, ts, total)
    if record.cancel_amount_pending:
        record.cancel_amount_pending = False
        orders.cancelled_cents += total
        _add_spend(profile, ts, -total)
    record.carts = _end_carts(profile, props.cart_id, ts)


def _end_carts(profile: Profile, cart_id: str | None, ts: float) -> list[str]:
    """Close the carts an order came from, and say which they were.

    An order that names its cart came from that cart (and only that one: a customer may
    keep another cart open). One that names no cart (Segment's "Order Completed" has no
    ``cart_id``; many shops send none) came from the carts the customer has open, the
    implicit cart included: every order ends the recovery of the cart it was bought
    from, whether or not its producer says which.
    """
    if cart_id is not None:
        close_cart(profile, cart_id, ts)
        return [cart_id]
    ended = sorted(profile.carts)
    for cart in ended:
        close_cart(profile, cart, ts)
    return ended


def _order_cancelled(profile: Profile, event: ev.OrderCancelled, ts: float) -> None:
    props = event.properties
    record = _order_record(profile, props.order_id)
    if record.cancelled:
        return
    record.cancelled = True
    if props.amount is not None:
        _cancel(profile, ts, cents(props.amount))
    elif record.placed_at is not None:
        _cancel(profile, ts, record.total_cents)
    else:
        _cancel(profile, ts, 0)
        record.cancel_amount_pending = True


def _order_refunded(profile: Profile, event: ev.OrderRefunded, ts: float) -> None:
    amount = cents(event.properties.amount)
    orders = profile.orders
    orders.refund_count += 1
    orders.refunded_cents += amount
    _add_spend(profile, ts, -amount)


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


def _ticket_opened(profile: Profile, event: ev.TicketOpened, ts: float) -> None:
    props = event.properties
    ticket = _ticket(profile, props.ticket_id)
    if ticket.opened_at is None:
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


# --- account ----------------------------------------------------------------------------------


def _set_trait(profile: Profile, name: str, value: str | bool | None, ts: float, eid: str) -> None:
    if newer(profile.traits.get(name), ts, eid):
        profile.traits[name] = Stamped(value, ts, eid)


def _apply_traits(profile: Profile, traits: ev.Traits, ts: float, event_id: str) -> None:
    if traits.time_zone is not None:
        _set_trait(profile, "time_zone", traits.time_zone, ts, event_id)
    if traits.birthday is not None:
        _set_trait(profile, "birthday", traits.birthday.isoformat(), ts, event_id)
    if traits.locale is not None:
        _set_trait(profile, "locale", traits.locale, ts, event_id)
    if traits.country is not None:
        _set_trait(profile, "country", traits.country, ts, event_id)


#: Channel -> the trait that holds its address, when contacts are kept in plain form.
ADDRESS_TRAITS: Final = {"email": "email", "sms": "phone", "whatsapp": "phone"}


def keep_contact_digests(
    profile: Profile, event: ev.Event, ts: float, digest: ContactDigest
) -> None:
    """Keep the keyed digests of the email and phone of a registration or update
    (``privacy.contact_key`` set), last writer wins like every trait."""
    traits = event.properties
    if not isinstance(traits, ev.Traits):
        return
    if traits.email is not None:
        _set_trait(profile, "email_digest", digest(traits.email), ts, event.event_id)
    if traits.phone is not None:
        _set_trait(profile, "phone_digest", digest(traits.phone), ts, event.event_id)


def keep_contacts(profile: Profile, event: ev.Event, ts: float) -> None:
    """Keep the plain email and phone of a registration or update (``privacy.keep_contacts``
    on), last writer wins like the digests."""
    traits = event.properties
    if not isinstance(traits, ev.Traits):
        return
    if traits.email is not None:
        _set_trait(profile, "email", traits.email.strip(), ts, event.event_id)
    if traits.phone is not None:
        _set_trait(profile, "phone", traits.phone.strip(), ts, event.event_id)


def _customer_registered(profile: Profile, event: ev.CustomerRegistered, ts: float) -> None:
    if profile.registered_at is None or ts < profile.registered_at:
        profile.registered_at = ts
    _apply_traits(profile, event.properties, ts, event.event_id)


def _customer_updated(profile: Profile, event: ev.CustomerUpdated, ts: float) -> None:
    _apply_traits(profile, event.properties, ts, event.event_id)


def _consent_updated(profile: Profile, event: ev.ConsentUpdated, ts: float) -> None:
    props = event.properties
    if newer(profile.consent.get(props.channel), ts, event.event_id):
        profile.consent[props.channel] = Stamped(props.granted, ts, event.event_id)


def remember_anonymous_id(profile: Profile, anonymous_id: str) -> None:
    if anonymous_id not in profile.anonymous_ids:
        profile.anonymous_ids.append(anonymous_id)
        profile.anonymous_ids.sort()
        del profile.anonymous_ids[MAX_ANONYMOUS_IDS:]


def _customer_identified(profile: Profile, event: ev.CustomerIdentified, ts: float) -> None:
    """The merge of the anonymous profile is the store's job; here we only record the link."""
    if event.anonymous_id is not None:
        remember_anonymous_id(profile, event.anonymous_id)


def _erasure_requested(profile: Profile, event: ev.ErasureRequested, ts: float) -> None:
    """Erasure removes the whole profile; the engine does that before reducers run."""


_REDUCERS: Final[dict[type[Any], Callable[[Profile, Any, float], None]]] = {
    ev.ProductViewed: _product_viewed,
    ev.SearchPerformed: _search_performed,
    ev.CartItemAdded: _cart_item_added,
    ev.CartItemRemoved: _cart_item_removed,
    ev.CartCleared: _cart_cleared,
    ev.CheckoutStarted: _checkout_started,
    ev.OrderPlaced: _order_placed,
    ev.OrderCancelled: _order_cancelled,
    ev.OrderRefunded: _order_refunded,
    ev.TicketOpened: _ticket_opened,
    ev.TicketReplied: _ticket_replied,
    ev.TicketResolved: _ticket_resolved,
    ev.SatisfactionRated: _satisfaction_rated,
    ev.ReviewSubmitted: _review_submitted,
    ev.CustomerRegistered: _customer_registered,
    ev.CustomerUpdated: _customer_updated,
    ev.ConsentUpdated: _consent_updated,
    ev.CustomerIdentified: _customer_identified,
    ev.ErasureRequested: _erasure_requested,
}
assert set(_REDUCERS) == set(ev.EVENT_CLASSES), "every event kind needs a reducer"


def apply_event(profile: Profile, event: ev.Event, ts: float | None = None) -> Profile:
    """Fold one event into the profile. ``ts`` is ``event.occurred_at`` as epoch seconds."""
    if ts is None:
        ts = event.occurred_at.timestamp()
    _touch(profile, event, ts)
    _REDUCERS[type(event)](profile, event, ts)
    return profile
