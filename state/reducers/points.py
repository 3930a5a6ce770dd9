"""Events into the points ledger (``state/loyalty.py``), when the rules have a loyalty
program: orders earn (pending for the return window), refunds and cancellations take
back, reviews and the registration earn, redemptions spend.

The fold calls this after the other reducers and before the derived fields, so an order
earns at the tier the customer had before it.
"""

from __future__ import annotations

from schemas import events as ev
from state.changes import ProfileChange
from state.loyalty import (
    Ledger,
    LoyaltyProgram,
    claw_back,
    earn_fixed,
    earn_order,
    local_day,
    redeem,
    settle,
)
from state.profile import Profile
from state.reducers.commerce import check_in_day

#: The events the ledger reads.
POINTS_KINDS = frozenset(
    (
        ev.OrderPlaced,
        ev.OrderCancelled,
        ev.OrderRefunded,
        ev.ReviewSubmitted,
        ev.CustomerRegistered,
        ev.PointsRedeemed,
        ev.MemberCheckedIn,
    )
)


def apply_points(
    profile: Profile, event: ev.Event, ts: float, program: LoyaltyProgram
) -> list[ProfileChange]:
    """Apply ``event`` to the profile's ledger; a refused redemption is a change."""
    if type(event) not in POINTS_KINDS:
        return []
    if type(event) is ev.MemberCheckedIn and not program.check_in_points:
        return []  # a program that gives nothing for check-ins opens no ledger for them
    ledger = profile.points
    if ledger is None:
        if isinstance(event, ev.OrderCancelled | ev.OrderRefunded):
            return []  # nothing to take back from
        ledger = profile.points = Ledger()
    settle(ledger, ts)
    day = local_day(program, ts, profile.trait("time_zone"))
    if isinstance(event, ev.OrderPlaced):
        placed = event.properties
        cents = round(placed.total * 100)
        earn_order(ledger, program, placed.order_id, cents, at=ts, tier=profile.tier, day=day)
    elif isinstance(event, ev.OrderRefunded):
        claw_back(ledger, event.properties.order_id, round(event.properties.amount * 100), ts)
    elif isinstance(event, ev.OrderCancelled):
        amount = event.properties.amount
        refunded = None if amount is None else round(amount * 100)
        claw_back(ledger, event.properties.order_id, refunded, ts)
    elif isinstance(event, ev.ReviewSubmitted):
        lot_id = f"review:{event.event_id}"
        earn_fixed(ledger, program, "review", lot_id, program.review_points, at=ts, day=day)
    elif isinstance(event, ev.CustomerRegistered):
        if not ledger.registration_awarded and program.registration_points:
            ledger.registration_awarded = True
            points = program.registration_points
            earn_fixed(ledger, program, "registration", "registration", points, at=ts, day=day)
    elif isinstance(event, ev.MemberCheckedIn):
        lot_id = f"check_in:{check_in_day(event, ts)}"  # a day earns once
        earn_fixed(ledger, program, "check_in", lot_id, program.check_in_points, at=ts, day=day)
    elif isinstance(event, ev.PointsRedeemed):
        wanted = event.properties.points
        reason = redeem(ledger, event.properties.redemption_id, wanted, ts)
        if reason is not None:
            refused = ProfileChange.make(
                "points_redemption_refused", profile.key, str(wanted), reason, ts, event.event_id
            )
            return [refused]
    return []
