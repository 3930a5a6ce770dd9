"""What orders are credited to journeys: the revenue of a conversion, and coupon
redemption (核销).

A run converted by an order carries the order's total (``order_value``), so the report can
give revenue per customer in each arm as well as conversion.

An order that uses a code a send issued is matched to that send, and through it to the
journey, run and arm; the match is a ``coupon_redeemed`` milestone carrying the code, the
discount given and the order's total.

A sent coupon is remembered on the customer's journey state (``IssuedCoupon``, at most
``MAX_COUPONS_KEPT``, the oldest forgotten first). An ``order.placed`` whose ``coupon``
equals one of them (case and surrounding spaces aside), placed at or after it was issued,
redeems it; each is redeemed once, by the first such order in event time, and is then
forgotten. An order up to 30 days after ``valid_until`` still redeems it: the shop took
the code, and the attribution says what happened (the shop's checkout is the place that
refuses a late code). Later it is forgotten too, so a profile holds only live coupons.
A code the customer
was not sent (forwarded, or from a campaign Rapport did not run) matches nothing.

The discount is the order's own ``discount`` when it has one. Otherwise it is worked out
from the coupon: an amount coupon gives its amount; a percent coupon gives that share of
the items' value (prices are before discounts, as in Segment's Order Completed), or,
without items, of the pre-discount total the order's ``total`` implies.

>>> from rules.actions import Coupon
>>> from state.journey_runs import JourneyRun, JourneyState
>>> state = JourneyState()
>>> run = JourneyRun(run_id="r1", journey_id="win_back", entity=None, trigger="t",
...                  entered_at=0.0, arm="main")
>>> remember_issued(state, Coupon(code="RP-1", percent=10, valid_until=200.0), "a1", run, 100.0)
>>> order = OrderPlacedProperties(order_id="o1", total=90.0, coupon=" rp-1 ")
>>> redeemed = redeem(state, "c1", order, "e7", 150.0)
>>> redeemed.kind, redeemed.journey_id, redeemed.action_id, redeemed.discount, redeemed.value
('coupon_redeemed', 'win_back', 'a1', 10.0, 90.0)
>>> redeem(state, "c1", order, "e8", 160.0) is None  # once only
True
"""

from __future__ import annotations

import hashlib

from rules.actions import Coupon, JourneyMilestone, milestone_id
from schemas.events import Event, OrderPlaced, OrderPlacedProperties
from state.journey_runs import (
    COUPON_LATE_USE_SECONDS,
    MAX_COUPONS_KEPT,
    IssuedCoupon,
    JourneyRun,
    JourneyState,
)


def derived_coupon_code(action_id: str) -> str:
    """The code of a coupon not taken from a pool: unique per send, derived from the send's
    action id so that a replay hands out the same one (a deferred send, sent in the end,
    has the id it had before it was deferred).

    >>> derived_coupon_code("3f1c")
    'RP-2CA03CE6F0B2'
    """
    digest = hashlib.blake2b(action_id.encode(), digest_size=8, person=b"rapport-coupon")
    return "RP-" + digest.hexdigest()[:12].upper()


def order_value(event: Event) -> float | None:
    """The total of an order event, the value a conversion by it is credited with."""
    return event.properties.total if isinstance(event, OrderPlaced) else None


def remember_issued(
    state: JourneyState, coupon: Coupon, action_id: str, run: JourneyRun, at: float
) -> None:
    """Keep a coupon that send ``action_id`` of ``run`` gave at ``at``, to match orders
    against (a send made again, on a redelivery or a replay, is kept once)."""
    _forget_lapsed(state, at)
    coupons = state.coupons
    if any(c.action_id == action_id for c in coupons):
        return
    coupons.append(
        IssuedCoupon(
            code=coupon.code,
            action_id=action_id,
            journey_id=run.journey_id,
            run_id=run.run_id,
            arm=run.arm,
            entity=run.entity,
            issued_at=at,
            valid_until=coupon.valid_until,
            percent=coupon.percent,
            amount=coupon.amount,
        )
    )
    if len(coupons) > MAX_COUPONS_KEPT:
        del coupons[0]


def redeem(
    state: JourneyState,
    profile_key: str,
    order: OrderPlacedProperties,
    cause: str,
    at: float,
) -> JourneyMilestone | None:
    """The milestone of the coupon ``order`` (placed at ``at`` by event ``cause``) redeems,
    which is then forgotten; None when its code is none this customer holds."""
    if order.coupon is None:
        return None
    _forget_lapsed(state, at)
    code = order.coupon.strip().casefold()
    for index, coupon in enumerate(state.coupons):
        if coupon.issued_at <= at and coupon.code.casefold() == code:
            del state.coupons[index]  # redeemed: a second use matches nothing
            return JourneyMilestone(
                milestone_id=milestone_id("coupon_redeemed", coupon.run_id, cause),
                kind="coupon_redeemed",
                journey_id=coupon.journey_id,
                run_id=coupon.run_id,
                arm=coupon.arm,
                profile_key=profile_key,
                entity=coupon.entity,
                at=at,
                cause=cause,
                value=order.total,
                coupon=coupon.code,
                discount=discount_given(coupon, order),
                action_id=coupon.action_id,
            )
    return None


def _forget_lapsed(state: JourneyState, at: float) -> None:
    """Drop the coupons whose late-use allowance has passed by ``at``."""
    late = COUPON_LATE_USE_SECONDS
    if any(c.valid_until + late < at for c in state.coupons):
        state.coupons = [c for c in state.coupons if c.valid_until + late >= at]


def discount_given(coupon: IssuedCoupon, order: OrderPlacedProperties) -> float:
    """What the coupon took off ``order``, in the order's currency, to the cent.

    >>> c = IssuedCoupon(code="X", action_id="a", journey_id="j", run_id="r", arm="main",
    ...                  entity=None, issued_at=0, valid_until=1, percent=20)
    >>> discount_given(c, OrderPlacedProperties(order_id="o", total=80.0))
    20.0
    """
    if order.discount is not None:
        return round(order.discount, 2)
    if coupon.amount is not None:
        return round(coupon.amount, 2)
    percent = coupon.percent or 0
    items = sum(item.price * item.quantity for item in order.items)
    if items > 0:
        return round(items * percent / 100, 2)
    if percent >= 100:
        return 0.0  # a free order without items: what it was worth is unknown
    return round(order.total * percent / (100 - percent), 2)
