"""The customer base held: customers by lifecycle stage and tier, buyers and repeat
buyers, and the loyalty ledgers' totals, counted over the profiles a runner holds when
its metrics or summary are read.

>>> from state.profile import Profile
>>> base = population([Profile(key="c1", customer_id="c1"), Profile(key="anon:a1")])
>>> base.customers, base.visitors, base.points_members
(1, 1, 0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from state.loyalty import points_at
from state.profile import Profile

#: The ledger totals the metrics report (``state/loyalty.py: Ledger``).
POINT_MOVEMENTS = (
    "earned",
    "redeemed",
    "expired",
    "clawed_back",
    "shortfall",
    "refused",
    "merged",
)


@dataclass
class Population:
    """The customer base held: customers (profiles with a customer id) by lifecycle stage
    and tier, buyers (1+ orders) and repeat buyers (2+ orders); visitors apart. The
    points count every ledger, a guest's too: the shop owes them all."""

    customers: int = 0
    visitors: int = 0
    stages: Counter[str] = field(default_factory=Counter)
    tiers: Counter[str] = field(default_factory=Counter)
    buyers: int = 0
    repeat_buyers: int = 0
    #: Loyalty: profiles with a points ledger, the points they can spend and those still
    #: pending (each at its profile's moment), and the ledgers' lifetime movements.
    points_members: int = 0
    points_outstanding: int = 0
    points_pending: int = 0
    points_moved: Counter[str] = field(default_factory=Counter)

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat_buyers / self.buyers if self.buyers else None

    def add(self, profile: Profile) -> None:
        ledger = profile.points
        if ledger is not None:
            view = points_at(ledger, profile.as_of)
            self.points_members += 1
            self.points_outstanding += view.balance
            self.points_pending += view.pending
            for movement in POINT_MOVEMENTS:
                self.points_moved[movement] += getattr(ledger, movement)
        if profile.customer_id is None:
            self.visitors += 1
            return
        self.customers += 1
        self.stages[profile.lifecycle] += 1
        self.tiers[profile.tier] += 1
        count = profile.orders.count
        if count:
            self.buyers += 1
            if count > 1:
                self.repeat_buyers += 1

    def points_summary(self, point_value: Decimal) -> dict[str, Any]:
        """The loyalty block of the replay summary: members, outstanding and pending
        points, the liability (outstanding x point value), lifetime movements, and the
        redemption and expiry rates (per point earned)."""
        moved = {movement: self.points_moved[movement] for movement in POINT_MOVEMENTS}
        earned = moved["earned"]
        return {
            "members": self.points_members,
            "outstanding": self.points_outstanding,
            "pending": self.points_pending,
            "liability": float(self.points_outstanding * point_value),
            **moved,
            "redemption_rate": round(moved["redeemed"] / earned, 4) if earned else 0.0,
            "expiry_rate": round(moved["expired"] / earned, 4) if earned else 0.0,
        }


def population(profiles: Iterable[Profile | None]) -> Population:
    counted = Population()
    for profile in profiles:
        if profile is not None:
            counted.add(profile)
    return counted
