"""The per-journey report: entered, exited, sent, suppressed by reason, converted, lift
and its 95% interval (``rules/lift.py``).

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
from rules.lift import lift_estimate


@dataclass
class JourneyCounts:
    entered: int = 0
    exited: int = 0
    completed: int = 0
    converted: int = 0
    sent: int = 0
    deferred: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    entered_holdout: int = 0
    converted_holdout: int = 0

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
        counts = self.journeys.setdefault(item.journey_id, JourneyCounts())
        holdout = item.arm == "holdout"
        if isinstance(item, JourneyMilestone):
            if item.kind == "entered":
                counts.entered += 1
                counts.entered_holdout += holdout
            elif item.kind == "exited":
                counts.exited += 1
            elif item.kind == "completed":
                counts.completed += 1
            elif item.kind == "converted":
                counts.converted += 1
                counts.converted_holdout += holdout
        elif item.status == "sent":
            counts.sent += 1
        elif item.status == "deferred":
            counts.deferred += 1
        else:
            counts.suppressed[item.reason or "unknown"] += 1

    def rows(self) -> list[dict[str, object]]:
        """One plain dict per journey, sorted by id (for JSON summaries)."""
        rows = []
        for journey_id, c in sorted(self.journeys.items()):
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
                    "lift_interval": _interval(c),
                }
            )
        return rows


def _interval(c: JourneyCounts) -> dict[str, object] | None:
    """The conversion difference, treated less holdout, with its 95% interval
    (``rules/lift.py``); None until both arms have runs."""
    estimate = lift_estimate(
        treated_converted=c.converted - c.converted_holdout,
        treated=c.entered - c.entered_holdout,
        holdout_converted=c.converted_holdout,
        holdout=c.entered_holdout,
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
