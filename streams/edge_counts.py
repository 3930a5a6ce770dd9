"""What a runner counts at its edge, from what the engines return: events by type, dead
letters by reason, profile changes by kind, journey runs and actions, churn labels.

Plain counters, no Prometheus here: ``streams/web.py`` turns them into metrics at scrape
time. Every key is from a closed set (event types, reasons, change kinds, journey ids
from the rules, outcomes), never a customer, cart or event id, so metrics stay bounded
however many customers there are.

>>> from schemas.events import OrderPlaced
>>> counts = EdgeCounts()
>>> counts.count_read(OrderPlaced, 0.2); counts.count_dead("invalid_json")
>>> counts.events_by_type(), dict(counts.dead_letters_by_reason)
({'order.placed': 1}, {'invalid_json': 1})
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from churn.tracker import ChurnLabel
from rules.actions import Action, JourneyMilestone
from schemas.events import EVENT_TYPES
from schemas.segment import IGNORED_CALLS
from state.audit import ErasureAudit
from state.changes import ProfileChange

TYPE_OF = {cls: tag for tag, cls in EVENT_TYPES.items()}
MAX_IGNORED_NAMES = 200
OTHER_NAMES = "(other)"
IGNORED_CALL_LABELS: tuple[str, ...] = (*sorted(IGNORED_CALLS), "other", "track")
#: Upper bounds (seconds) of the event latency histogram's buckets.
LATENCY_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


@dataclass
class EdgeCounts:
    #: Valid events read, by class (named at scrape time: the hot path skips the lookup).
    events_by_class: dict[type, int] = field(default_factory=dict)
    dead_letters_by_reason: Counter[str] = field(default_factory=Counter)
    #: Records of a format's calls Rapport does not model (Segment ``page``, "Coupon
    #: Applied", ...), by name; at most ``MAX_IGNORED_NAMES`` names, the rest as "(other)".
    ignored_by_name: Counter[str] = field(default_factory=Counter)
    changes_by_kind: Counter[str] = field(default_factory=Counter)
    #: (journey id, milestone kind, arm): runs entered, exited, completed, converted.
    journey_runs: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: (journey id, status, reason or ""): actions sent, deferred, suppressed and why.
    journey_actions: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: (journey id, arm, what): "coupons_issued" (sends with a coupon), and in currency
    #: units "revenue" (of converting orders), "coupon_discount" and "coupon_revenue"
    #: (of orders that redeemed a coupon the journey issued).
    journey_value: dict[tuple[str, str, str], float] = field(default_factory=dict)
    #: "churned" / "retained": churn labels the engines gave.
    churn_labels: Counter[str] = field(default_factory=Counter)
    #: Erasures by reason ("request", "retention"), unknown ids included.
    erasures: Counter[str] = field(default_factory=Counter)
    #: How old events were when handled (handling time less event time): per bucket
    #: (upper bounds in ``LATENCY_BUCKETS``, the last one unbounded), and the sum.
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def count_read(self, event_class: type, age_seconds: float) -> None:
        """A valid event read, ``age_seconds`` old (handling time less event time)."""
        by_class = self.events_by_class
        by_class[event_class] = by_class.get(event_class, 0) + 1
        self.latency_sum += age_seconds
        self.latency_counts[bisect_left(LATENCY_BUCKETS, age_seconds)] += 1

    def events_by_type(self) -> dict[str, int]:
        return {TYPE_OF[cls]: n for cls, n in self.events_by_class.items()}

    def count_dead(self, reason: str) -> None:
        self.dead_letters_by_reason[reason] += 1

    def count_ignored(self, name: str) -> None:
        ignored = self.ignored_by_name
        if name not in ignored and len(ignored) >= MAX_IGNORED_NAMES:
            name = OTHER_NAMES
        ignored[name] += 1

    def ignored_by_call(self) -> dict[str, int]:
        """Ignored records by call type (``page``, ``screen``, ``alias``, ``group``, ``other``,
        and ``track`` for every track event name): a closed set, for metrics."""
        calls = dict.fromkeys(IGNORED_CALL_LABELS, 0)
        for name, count in self.ignored_by_name.items():
            call = name if name in IGNORED_CALLS or name == "other" else "track"
            calls[call] += count
        return calls

    def write(self, output: object) -> None:
        """Count one output the engines gave (a sink, ``engine/outputs.py``)."""
        count = _COUNT.get(type(output))
        if count is not None:
            count(self, output)

    def flush(self) -> None:
        return None

    def count_outputs(self, outputs: Iterable[object]) -> None:
        for output in outputs:
            self.write(output)


def _change(counts: EdgeCounts, item: ProfileChange) -> None:
    counts.changes_by_kind[item.kind] += 1


def _action(counts: EdgeCounts, item: Action) -> None:
    counts.journey_actions[(item.journey_id, item.status, item.reason or "")] += 1
    if item.coupon is not None and item.status == "sent":
        _add(counts.journey_value, (item.journey_id, item.arm, "coupons_issued"), 1)


def _milestone(counts: EdgeCounts, item: JourneyMilestone) -> None:
    counts.journey_runs[(item.journey_id, item.kind, item.arm)] += 1
    if item.value is not None:
        value, journey, arm = counts.journey_value, item.journey_id, item.arm
        if item.kind == "converted":
            _add(value, (journey, arm, "revenue"), item.value)
        elif item.kind == "coupon_redeemed":
            _add(value, (journey, arm, "coupon_revenue"), item.value)
            _add(value, (journey, arm, "coupon_discount"), item.discount or 0.0)


def _add(sums: dict[tuple[str, str, str], float], key: tuple[str, str, str], x: float) -> None:
    sums[key] = sums.get(key, 0.0) + x


def _label(counts: EdgeCounts, item: ChurnLabel) -> None:
    counts.churn_labels["churned" if item.churned else "retained"] += 1


def _audit(counts: EdgeCounts, item: ErasureAudit) -> None:
    counts.erasures[item.reason] += 1


#: What each output type counts towards (the other types are not counted).
_COUNT: dict[type, Callable[[EdgeCounts, Any], None]] = {
    ProfileChange: _change,
    Action: _action,
    JourneyMilestone: _milestone,
    ChurnLabel: _label,
    ErasureAudit: _audit,
}
