"""Cart and order reducers: open carts and their lines, checkouts, orders, cancellations
and refunds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from schemas import events as ev
from state.profile import (
    MAX_CART_LINES,
    MAX_CLOSED_CARTS,
    MAX_OPEN_CARTS,
    Cart,
    CartLine,
    OrderRecord,
    Profile,
)
from state.reducers.bounds import enforce_order_bound
from state.reducers.clock import cents, count_on
from state.tiers import count_in_month, month_index

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
    name: str | None = None,
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
        line.name = name or line.name
    if line.quantity == 0 and line.priced_at >= 0:
        del cart.lines[product_id]


def _cart_item_added(profile: Profile, event: ev.CartItemAdded, ts: float) -> None:
    props = event.properties
    cart = _cart(profile, props.cart_id, ts)
    if cart is not None:
        _adjust_line(
            cart, props.product_id, props.quantity, ts, props.price, props.category, props.name
        )


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


def enforce_cart_bound(profile: Profile) -> None:
    """Close the least recently touched carts; closed, late events cannot bring them back."""
    while len(profile.carts) > MAX_OPEN_CARTS:
        stalest = min(profile.carts.values(), key=lambda c: (c.last_touched_at, c.cart_id))
        close_cart(profile, stalest.cart_id, stalest.last_touched_at)
        profile.carts_evicted += 1


def _checked_in(profile: Profile, event: ev.MemberCheckedIn, ts: float) -> None:
    """A day checked in counts once for growth value, however often it is sent."""
    day = check_in_day(event, ts)
    growth = profile.growth
    if growth.last_check_in is not None and day <= growth.last_check_in:
        return  # that day (or a later one: this is late) is counted
    growth.last_check_in = day
    count_in_month(growth.check_ins_by_month, ts)


def check_in_day(event: ev.MemberCheckedIn, ts: float) -> str:
    """The day a check-in is for: the shop's date, else the UTC date of the event."""
    if event.properties.date is not None:
        return event.properties.date.isoformat()
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


#: The reducer of each event kind this module handles.
REDUCERS: Final[dict[type[Any], Callable[[Profile, Any, float], None]]] = {
    ev.CartItemAdded: _cart_item_added,
    ev.CartItemRemoved: _cart_item_removed,
    ev.CartCleared: _cart_cleared,
    ev.CheckoutStarted: _checkout_started,
    ev.OrderPlaced: _order_placed,
    ev.OrderCancelled: _order_cancelled,
    ev.OrderRefunded: _order_refunded,
    # The ledger needs the rules' program: ``state/reducers/points.py`` (from the fold).
    ev.PointsRedeemed: lambda profile, event, ts: None,
    ev.MemberCheckedIn: _checked_in,
}
