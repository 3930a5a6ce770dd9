"""The per-journey report: entered, exited, sent, suppressed by reason, converted, lift
and its 95% interval (``rules/lift.py``), revenue per customer with its interval, and the
coupons the journey issued and the orders that redeemed them (``rules/attribution.py``);
the same per arm (each variant against the holdout).

Built from the engine's outputs alone, so replay, backtests and the worker count alike.

>>> report = JourneyReport()
>>> report.count_all([])
>>> report.rows()
[]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from rules.actions import Action, JourneyMilestone
from rules.lift import MeanArm, lift_estimate, welch_interval

HOLDOUT = "holdout"


@dataclass
class ArmCounts:
    """One arm of one journey: runs, conversions, and what the conversions were worth."""

    entered: int = 0
    converted: int = 0
    #: Sum and sum of squares of converting orders' totals (a run counts once).
    revenue: float = 0.0
    revenue_squares: float = 0.0
    coupons_issued: int = 0
    coupons_redeemed: int = 0
    discount: float = 0.0
    #: Totals of the orders that redeemed a coupon this arm issued.
    coupon_revenue: float = 0.0

    def add(self, other: ArmCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def revenue_arm(self) -> MeanArm:
        """Revenue per run as sums, a run that did not convert counting 0."""
        return MeanArm(self.entered, self.revenue, self.revenue_squares)


@dataclass
class JourneyCounts:
    exited: int = 0
    completed: int = 0
    sent: int = 0
    deferred: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    #: Runs, conversions and their value per arm; the journey's totals are their sums.
    arms: dict[str, ArmCounts] = field(default_factory=dict)

    @property
    def entered(self) -> int:
        return sum(arm.entered for arm in self.arms.values())

    @property
    def converted(self) -> int:
        return sum(arm.converted for arm in self.arms.values())

    @property
    def entered_holdout(self) -> int:
        return self.arms[HOLDOUT].entered if HOLDOUT in self.arms else 0

    @property
    def converted_holdout(self) -> int:
        return self.arms[HOLDOUT].converted if HOLDOUT in self.arms else 0

    @property
    def conversion_rate(self) -> float | None:
        treated = self.entered - self.entered_holdout
        return (self.converted - self.converted_holdout) / treated if treated else None

    @property
    def holdout_conversion_rate(self) -> float | None:
        held = self.entered_holdout
        return self.converted_holdout / held if held else None

    @property
    def lift(self) -> float | None:
        """Treated conversion rate over the holdout's, minus one (None without both)."""
        treated, held = self.conversion_rate, self.holdout_conversion_rate
        if treated is None or not held:
            return None
        return treated / held - 1

    def arm(self, name: str) -> ArmCounts:
        arm = self.arms.get(name)
        if arm is None:
            arm = self.arms[name] = ArmCounts()
        return arm

    def treated(self) -> ArmCounts:
        """Every arm but the holdout, added up."""
        total = ArmCounts()
        for name, arm in self.arms.items():
            if name != HOLDOUT:
                total.add(arm)
        return total


class JourneyReport:
    def __init__(self) -> None:
        self.journeys: dict[str, JourneyCounts] = {}

    def write(self, output: object) -> None:
        """Count one output (a sink, ``engine/outputs.py``): actions and milestones."""
        if type(output) is Action or type(output) is JourneyMilestone:
            self.count(output)

    def flush(self) -> None:
        return None

    def count_all(self, outputs: Iterable[object]) -> None:
        for output in outputs:
            self.write(output)

    def count(self, item: Action | JourneyMilestone) -> None:
        counts = self.journeys.get(item.journey_id)
        if counts is None:
            counts = self.journeys[item.journey_id] = JourneyCounts()
        if isinstance(item, JourneyMilestone):
            kind = item.kind
            if kind == "entered":
                counts.arm(item.arm).entered += 1
            elif kind == "exited":
                counts.exited += 1
            elif kind == "completed":
                counts.completed += 1
            elif kind == "converted":
                arm = counts.arm(item.arm)
                arm.converted += 1
                if item.value is not None:
                    arm.revenue += item.value
                    arm.revenue_squares += item.value * item.value
            elif kind == "coupon_redeemed":
                arm = counts.arm(item.arm)
                arm.coupons_redeemed += 1
                arm.discount += item.discount or 0.0
                arm.coupon_revenue += item.value or 0.0
        elif item.status == "sent":
            counts.sent += 1
            if item.coupon is not None:
                counts.arm(item.arm).coupons_issued += 1
        elif item.status == "deferred":
            counts.deferred += 1
        else:
            counts.suppressed[item.reason or "unknown"] += 1

    def rows(self) -> list[dict[str, object]]:
        """One plain dict per journey, sorted by id (for JSON summaries)."""
        rows = []
        for journey_id, c in sorted(self.journeys.items()):
            treated, held = c.treated(), c.arms.get(HOLDOUT, ArmCounts())
            rows.append(
                {
                    "journey": journey_id,
                    "entered": c.entered,
                    "exited": c.exited,
                    "completed": c.completed,
                    "sent": c.sent,
                    "deferred": c.deferred,
                    "suppressed": dict(sorted(c.suppressed.items())),
                    "converted": c.converted,
                    "holdout_entered": c.entered_holdout,
                    "holdout_converted": c.converted_holdout,
                    "lift": None if c.lift is None else round(c.lift, 4),
                    "lift_interval": _interval(treated, held),
                    "revenue_per_customer": _revenue(treated, held),
                    "coupons": _coupons(treated),
                    "arms": {
                        name: _arm_row(arm, held, name != HOLDOUT)
                        for name, arm in sorted(c.arms.items())
                    },
                }
            )
        return rows


def _arm_row(arm: ArmCounts, held: ArmCounts, treated: bool) -> dict[str, object]:
    """One arm: its runs and conversions and, for a treated arm, how it compares with the
    holdout (conversion and revenue per customer, each with its interval)."""
    row: dict[str, object] = {
        "entered": arm.entered,
        "converted": arm.converted,
        "revenue": round(arm.revenue, 2),
        "coupons": _coupons(arm),
    }
    if treated:
        row["lift_interval"] = _interval(arm, held)
        row["revenue_per_customer"] = _revenue(arm, held)
    return row


def _interval(treated: ArmCounts, held: ArmCounts) -> dict[str, object] | None:
    """The conversion difference, treated less holdout, with its 95% interval
    (``rules/lift.py``); None until both arms have runs."""
    estimate = lift_estimate(
        treated_converted=treated.converted,
        treated=treated.entered,
        holdout_converted=held.converted,
        holdout=held.entered,
    )
    if estimate is None:
        return None
    return {
        "difference": round(estimate.difference, 4),
        "low": round(estimate.low, 4),
        "high": round(estimate.high, 4),
        "significant": estimate.significant,
        "customers_needed": estimate.needed,
        "more_customers_needed": estimate.more_needed,
    }


def _revenue(treated: ArmCounts, held: ArmCounts) -> dict[str, object] | None:
    """Revenue per customer (per run), treated and holdout, and Welch's 95% interval for
    the difference; None until each arm has two runs and the interval 3 degrees of
    freedom."""
    estimate = welch_interval(treated.revenue_arm, held.revenue_arm)
    if estimate is None:
        return None
    return {
        "treated": round(estimate.treated_mean, 2),
        "holdout": round(estimate.holdout_mean, 2),
        "difference": round(estimate.difference, 2),
        "low": round(estimate.low, 2),
        "high": round(estimate.high, 2),
        "significant": estimate.significant,
    }


def _coupons(arm: ArmCounts) -> dict[str, object]:
    issued = arm.coupons_issued
    return {
        "issued": issued,
        "redeemed": arm.coupons_redeemed,
        "redemption_rate": round(arm.coupons_redeemed / issued, 4) if issued else None,
        "discount": round(arm.discount, 2),
        "revenue": round(arm.coupon_revenue, 2),
    }
