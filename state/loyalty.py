"""The points ledger (积分): what a customer earned, what is still pending, what expires
when, and what was redeemed, driven by a shop's loyalty program (``rules/loyalty.yaml``).

Points are kept in **lots**, one per earning (an order, a review, the registration).

- An order's points are *pending* until its return window has passed (``available_at``).
  A refund or cancellation before then takes them back from the lot itself, in
  proportion to the amount refunded. One after then takes them back from the lot's
  remaining points and then from the balance. What the balance cannot cover is counted
  as a ``shortfall``: the balance never goes below zero.
- Every lot expires ``expiry_days`` after it was earned; redemptions spend the lots that
  expire first (first in, first out).
- A redemption larger than the balance is refused and counted, and nothing changes.

Everything is a pure function of the events in event time: the lots are settled (expired
ones removed) up to each event's time before it is applied, and what the profile shows at
any moment (``points_at``) is computed from the lots without changing them. Lot ids come
from the event (``order:<order id>``, ``review:<event id>``), so a redelivered event never
earns twice.

>>> program = LoyaltyProgram(per_unit=Decimal(1), pending_days=14, expiry_days=365)
>>> ledger = Ledger()
>>> earn_order(ledger, program, "o1", 12_050, at=0.0, tier="member", day=local_day(program, 0.0))
120
>>> points_at(ledger, 0.0).pending, points_at(ledger, 15 * DAY).balance
(120, 120)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

import msgspec

DAY: Final = 86_400.0
#: Lots a ledger keeps (an earning every twelve days all year); past this the two that
#: expire first are merged into one that expires at the sooner time, and a refund of the
#: orders in it takes nothing back (docs/profile.md).
MAX_LOTS: Final = 30
#: Redemption ids remembered, so the same redemption is never spent twice.
MAX_REDEMPTION_IDS: Final = 64


class Lot(msgspec.Struct, gc=False, omit_defaults=True, array_like=True):
    """Points earned together; ``lot_id`` says what earned them (``order:<id>``,
    ``review:<event id>``, ``registration``, ``merged:<id>``). Stored as an array."""

    lot_id: str
    #: When the points can be spent (an order's return window has passed).
    available_at: float
    expires_at: float
    #: Points the earning gave, after multipliers and caps.
    awarded: int
    #: Points not yet spent, expired or taken back.
    remaining: int
    #: For an order: its total and what has been refunded of it, in cents.
    total_cents: int = 0
    refunded_cents: int = 0
    #: Points taken back so far (refunds, cancellation).
    clawed_back: int = 0


class Ledger(msgspec.Struct, omit_defaults=True):
    lots: list[Lot] = []
    earned: int = 0
    redeemed: int = 0
    expired: int = 0
    clawed_back: int = 0
    #: Points a late refund should have taken back but the balance did not hold.
    shortfall: int = 0
    #: Redemptions refused (more than the balance), and the newest one's reason.
    refused: int = 0
    last_refusal: str | None = None
    #: The day (in the program's time zone, days since 1970) ``earned_today`` counts.
    cap_day: int | None = None
    earned_today: int = 0
    registration_awarded: bool = False
    #: Times two lots were merged to keep the ledger within ``MAX_LOTS``.
    merged: int = 0
    #: The newest redemption ids and the points each spent.
    redemptions: dict[str, int] = {}


@dataclass(frozen=True)
class MemberDay:
    """A day whose earnings are multiplied: a weekday (0 = Monday) or a date (``MM-DD``)."""

    multiplier: Decimal
    weekday: int | None = None
    date: str | None = None

    def matches(self, day_of_week: int, month_day: str) -> bool:
        if self.weekday is not None:
            return self.weekday == day_of_week
        return self.date == month_day


@dataclass(frozen=True)
class LoyaltyProgram:
    """A shop's earning and expiry rules, as ``rules/loyalty.yaml`` states them."""

    #: Points per currency unit an order totals, before multipliers (rounded down).
    per_unit: Decimal = Decimal(1)
    tier_multipliers: dict[str, Decimal] = field(default_factory=dict)
    member_days: tuple[MemberDay, ...] = ()
    #: Earning kinds member days multiply (``order``, ``review``).
    member_day_kinds: frozenset[str] = frozenset({"order"})
    pending_days: int = 14
    expiry_days: int = 365
    per_order_cap: int | None = None
    daily_cap: int | None = None
    review_points: int = 0
    registration_points: int = 0
    check_in_points: int = 0
    #: "shop" or "customer": whose time zone decides member days and the daily cap.
    time_zone: str = "shop"
    shop_time_zone: str = "UTC"
    #: What one point is worth in the shop's currency (the liability on /metrics).
    point_value: Decimal = Decimal("0.01")

    def multiplier(self, kind: str, tier: str, day: LocalDay) -> Decimal:
        factor = self.tier_multipliers.get(tier, Decimal(1)) if kind == "order" else Decimal(1)
        if kind in self.member_day_kinds:
            for member_day in self.member_days:
                if member_day.matches(day.weekday, day.month_day):
                    factor *= member_day.multiplier
                    break
        return factor


@dataclass(frozen=True)
class PointsView:
    """What a ledger shows at one moment."""

    balance: int
    pending: int
    #: The soonest expiry of spendable points, and how many expire then.
    next_expiry_at: float | None
    next_expiry_points: int


def expiring_within(ledger: Ledger, at: float, seconds: float) -> int:
    """Spendable points at ``at`` that expire within ``seconds``."""
    return sum(
        lot.remaining
        for lot in ledger.lots
        if lot.available_at <= at < lot.expires_at <= at + seconds
    )


class LocalDay(NamedTuple):
    """A day in the program's time zone: member days and the daily cap go by it."""

    days: int  # since 1970-01-01
    weekday: int  # Monday 0
    month_day: str  # MM-DD


def local_day(program: LoyaltyProgram, at: float, customer_zone: object = None) -> LocalDay:
    """The day of ``at`` in the program's time zone (the customer's, if it says so)."""
    zone = program.shop_time_zone
    if program.time_zone == "customer" and isinstance(customer_zone, str) and customer_zone:
        zone = customer_zone
    moment = datetime.fromtimestamp(at, UTC).astimezone(_zone(zone))
    day = moment.date()
    return LocalDay(day.toordinal() - _EPOCH_ORDINAL, day.weekday(), f"{day.month:02}-{day.day:02}")


_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, OSError):  # checked where it is set; a stale trait still counts
        return ZoneInfo("UTC")


def points_at(ledger: Ledger, at: float) -> PointsView:
    """Balance, pending points and the next expiry at ``at``, without changing the lots."""
    balance = pending = 0
    soonest: float | None = None
    soonest_points = 0
    for lot in ledger.lots:
        if lot.remaining <= 0 or lot.expires_at <= at:
            continue
        if lot.available_at > at:
            pending += lot.remaining
            continue
        balance += lot.remaining
        if soonest is None or lot.expires_at < soonest:
            soonest, soonest_points = lot.expires_at, lot.remaining
        elif lot.expires_at == soonest:
            soonest_points += lot.remaining
    return PointsView(balance, pending, soonest, soonest_points)


def settle(ledger: Ledger, at: float) -> int:
    """Expire the lots whose time has come by ``at``; the points expired."""
    expired = 0
    kept: list[Lot] = []
    for lot in ledger.lots:
        if lot.expires_at <= at:
            expired += max(lot.remaining, 0)
        else:
            kept.append(lot)
    if expired or len(kept) != len(ledger.lots):
        ledger.lots = kept
        ledger.expired += expired
    return expired


def _earn(ledger: Ledger, program: LoyaltyProgram, lot: Lot, day: int) -> int:
    """Add ``lot`` after the daily cap; the points it got."""
    if ledger.cap_day != day:
        ledger.cap_day, ledger.earned_today = day, 0
    points = lot.awarded
    if program.daily_cap is not None:
        points = max(0, min(points, program.daily_cap - ledger.earned_today))
    if points <= 0:
        return 0
    lot.awarded = lot.remaining = points
    ledger.earned_today += points
    ledger.earned += points
    ledger.lots.append(lot)
    ledger.lots.sort(key=lambda kept: (kept.expires_at, kept.lot_id))
    if len(ledger.lots) > MAX_LOTS:
        _merge_first_two(ledger)
    return points


def _merge_first_two(ledger: Ledger) -> None:
    """The two lots that expire first as one, expiring at the sooner time."""
    first, second = ledger.lots[0], ledger.lots.pop(1)
    ledger.lots[0] = Lot(
        lot_id=f"merged:{first.lot_id.split(':', 1)[-1]}",
        available_at=max(first.available_at, second.available_at),
        expires_at=first.expires_at,
        awarded=first.awarded + second.awarded,
        remaining=first.remaining + second.remaining,
    )
    ledger.merged += 1


def earn_order(
    ledger: Ledger,
    program: LoyaltyProgram,
    order_id: str,
    total_cents: int,
    *,
    at: float,
    tier: str,
    day: LocalDay,
) -> int:
    """The points an order earns, pending for the return window; 0 if it earned before."""
    lot_id = f"order:{order_id}"
    if any(lot.lot_id == lot_id for lot in ledger.lots) or total_cents <= 0:
        return 0
    factor = program.multiplier("order", tier, day)
    exact = Decimal(total_cents) * program.per_unit * factor / 100
    points = int(exact.to_integral_value(ROUND_FLOOR))
    if program.per_order_cap is not None:
        points = min(points, program.per_order_cap)
    lot = Lot(
        lot_id=lot_id,
        available_at=at + program.pending_days * DAY,
        expires_at=at + program.expiry_days * DAY,
        awarded=points,
        remaining=points,
        total_cents=total_cents,
    )
    return _earn(ledger, program, lot, day.days)


def earn_fixed(
    ledger: Ledger,
    program: LoyaltyProgram,
    source: str,
    lot_id: str,
    points: int,
    *,
    at: float,
    day: LocalDay,
) -> int:
    """Points for a review, the registration, a birthday: spendable at once."""
    if points <= 0 or any(lot.lot_id == lot_id for lot in ledger.lots):
        return 0
    factor = program.multiplier(source, "", day)
    awarded = int((Decimal(points) * factor).to_integral_value(ROUND_FLOOR))
    lot = Lot(
        lot_id=lot_id,
        available_at=at,
        expires_at=at + program.expiry_days * DAY,
        awarded=awarded,
        remaining=awarded,
    )
    return _earn(ledger, program, lot, day.days)


def claw_back(ledger: Ledger, order_id: str, refunded_cents: int | None, at: float) -> int:
    """Take back an order's points for ``refunded_cents`` more refunded (None: the whole
    order cancelled); the points taken back."""
    lot = next((lot for lot in ledger.lots if lot.lot_id == f"order:{order_id}"), None)
    if lot is None or lot.total_cents <= 0:
        return 0  # it earned nothing, or its points have expired
    if refunded_cents is None:
        lot.refunded_cents = lot.total_cents
    else:
        lot.refunded_cents = min(lot.total_cents, lot.refunded_cents + max(refunded_cents, 0))
    kept = lot.awarded * (lot.total_cents - lot.refunded_cents) // lot.total_cents
    owed = lot.awarded - kept - lot.clawed_back
    if owed <= 0:
        return 0
    taken_back = owed
    lot.clawed_back += owed
    ledger.clawed_back += owed
    taken = min(owed, lot.remaining)
    lot.remaining -= taken
    owed -= taken
    if owed and lot.available_at <= at:  # confirmed and partly spent: from the balance
        owed -= _spend(ledger, owed, at)
    ledger.shortfall += owed
    return taken_back


def _spend(ledger: Ledger, points: int, at: float) -> int:
    """Spend up to ``points`` from the spendable lots that expire first; what was spent."""
    spent = 0
    for lot in ledger.lots:  # kept in expiry order
        if spent >= points:
            break
        if lot.available_at <= at < lot.expires_at and lot.remaining > 0:
            taken = min(lot.remaining, points - spent)
            lot.remaining -= taken
            spent += taken
    return spent


def redeem(ledger: Ledger, redemption_id: str, points: int, at: float) -> str | None:
    """Spend ``points``; None when done, else the reason it was refused."""
    if redemption_id in ledger.redemptions:
        return None  # spent before (a redelivery)
    if points <= 0:
        reason = "not_positive"
    elif points > points_at(ledger, at).balance:
        reason = "insufficient_points"
    else:
        _spend(ledger, points, at)
        ledger.redeemed += points
        ledger.redemptions[redemption_id] = points
        while len(ledger.redemptions) > MAX_REDEMPTION_IDS:
            del ledger.redemptions[next(iter(ledger.redemptions))]
        return None
    ledger.refused += 1
    ledger.last_refusal = reason
    return reason


def merge_ledgers(mine: Ledger | None, theirs: Ledger | None) -> Ledger | None:
    """A visitor's ledger into the customer's (``state/identity.py``): lots side by side
    (the customer's kept where both have one, as for the registration), counters added."""
    if theirs is None:
        return mine
    if mine is None:
        return theirs
    known = {lot.lot_id for lot in mine.lots}
    mine.lots = sorted(
        [*mine.lots, *(lot for lot in theirs.lots if lot.lot_id not in known)],
        key=lambda lot: (lot.expires_at, lot.lot_id),
    )
    while len(mine.lots) > MAX_LOTS:
        _merge_first_two(mine)
    for name in ("earned", "redeemed", "expired", "clawed_back", "shortfall", "refused", "merged"):
        setattr(mine, name, getattr(mine, name) + getattr(theirs, name))
    mine.last_refusal = mine.last_refusal or theirs.last_refusal
    mine.registration_awarded = mine.registration_awarded or theirs.registration_awarded
    if theirs.cap_day is not None and (mine.cap_day is None or theirs.cap_day > mine.cap_day):
        mine.cap_day, mine.earned_today = theirs.cap_day, theirs.earned_today
    elif theirs.cap_day == mine.cap_day:
        mine.earned_today += theirs.earned_today
    mine.redemptions = {**theirs.redemptions, **mine.redemptions}
    while len(mine.redemptions) > MAX_REDEMPTION_IDS:
        del mine.redemptions[next(iter(mine.redemptions))]
    return mine
