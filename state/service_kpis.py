"""The service desk's figures: tickets by category, queue and sentiment band; first
responses by queue against the SLA of the routed priority; the sentiment of what
customers write, by kind and language, by customer segment and by month (the trend).

Flows, counted once per applied event (``engine/service_desk.py`` and ``KpiTally``),
with labels from closed or configured sets (routing.yaml's categories and queues, the
bands, RFM segments), never an id. Sentiment totals are kept in ten-thousandths, so they
add up exactly in any order.

>>> counts = ServiceCounts()
>>> counts.ticket("refund", "refunds", "very_negative")
>>> counts.text("ticket", "zh", "very_negative", -0.9, "at_risk", 24324)
>>> counts.responded("refunds", 3600.0, 4 * 3600.0)
>>> summary = counts.summary()
>>> summary["tickets"]["by_queue"], summary["first_response_by_queue"]["refunds"]["met_share"]
({'refunds': 1}, 1.0)
>>> summary["sentiment_by_segment"]["at_risk"], summary["sentiment_by_month"]
({'texts': 1, 'average': -0.9}, {'2027-01': {'texts': 1, 'average': -0.9}})
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: Upper bounds (seconds) of the first-response histogram: around the default SLAs.
FIRST_RESPONSE_BUCKETS: tuple[float, ...] = (
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    28800.0,
    86400.0,
    172800.0,
    259200.0,
    604800.0,
)


@dataclass
class FirstResponses:
    """First agent responses of one priority's tickets: a histogram and the SLA verdicts."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(FIRST_RESPONSE_BUCKETS) + 1))
    seconds: float = 0.0
    met: int = 0
    missed: int = 0

    @property
    def count(self) -> int:
        return self.met + self.missed

    def observe(self, seconds: float, sla: float) -> None:
        self.buckets[bisect_left(FIRST_RESPONSE_BUCKETS, seconds)] += 1
        self.seconds += seconds
        if seconds <= sla:
            self.met += 1
        else:
            self.missed += 1

    def add(self, other: FirstResponses) -> None:
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.seconds += other.seconds
        self.met += other.met
        self.missed += other.missed


def _average(count: int, total_e4: int) -> float | None:
    return round(total_e4 / count / 10_000, 4) if count else None


@dataclass
class ServiceCounts:
    #: (category, queue, band) -> tickets routed
    tickets: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: queue -> first agent responses (SLA of the ticket's routed priority)
    first_responses: dict[str, FirstResponses] = field(default_factory=dict)
    #: (kind, language, band) -> texts read: kind ticket/reply/rating/review, language
    #: zh/en, or ``other`` for a text in a language Rapport does not score
    texts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: segment -> [texts, total in ten-thousandths]: what customers wrote, by RFM segment
    by_segment: dict[str, list[int]] = field(default_factory=dict)
    #: (segment, band) -> texts: the histogram behind the per-segment trend on /metrics
    segment_bands: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: month (year * 12 + month - 1) -> [texts, total in ten-thousandths]
    by_month: dict[int, list[int]] = field(default_factory=dict)

    def ticket(self, category: str, queue: str, band: str) -> None:
        self.tickets[(category, queue, band)] += 1

    def responded(self, queue: str | None, seconds: float, sla: float) -> None:
        key = queue or "unrouted"
        responses = self.first_responses.get(key)
        if responses is None:
            responses = self.first_responses[key] = FirstResponses()
        responses.observe(seconds, sla)

    def text(
        self,
        kind: str,
        language: str,
        band: str,
        score: float | None,
        segment: str | None,
        month: int | None,
    ) -> None:
        """One text read; a customer's own (``segment`` and ``month`` given) also counts
        toward the segment's and the month's sentiment."""
        self.texts[(kind, language, band)] += 1
        if score is None:
            return
        e4 = round(score * 10_000)
        if segment is not None:
            self.segment_bands[(segment, band)] += 1
            row = self.by_segment.setdefault(segment, [0, 0])
            row[0], row[1] = row[0] + 1, row[1] + e4
        if month is not None:
            row = self.by_month.setdefault(month, [0, 0])
            row[0], row[1] = row[0] + 1, row[1] + e4

    def add(self, other: ServiceCounts) -> None:
        self.tickets.update(other.tickets)
        for queue, responses in other.first_responses.items():
            self.first_responses.setdefault(queue, FirstResponses()).add(responses)
        self.texts.update(other.texts)
        self.segment_bands.update(other.segment_bands)
        for segment, (count, e4) in other.by_segment.items():
            row = self.by_segment.setdefault(segment, [0, 0])
            row[0], row[1] = row[0] + count, row[1] + e4
        for month, (count, e4) in other.by_month.items():
            row = self.by_month.setdefault(month, [0, 0])
            row[0], row[1] = row[0] + count, row[1] + e4

    def summary(self) -> dict[str, Any]:
        """Plain, JSON-ready figures, sorted by their labels."""

        def total(index: int) -> dict[str, int]:
            found: Counter[str] = Counter()
            for key, count in self.tickets.items():
                found[key[index]] += count
            return dict(sorted(found.items()))

        sla = {
            queue: {
                "responses": r.count,
                "met": r.met,
                "met_share": round(r.met / r.count, 4) if r.count else None,
                "mean_hours": round(r.seconds / r.count / 3600, 2) if r.count else None,
            }
            for queue, r in sorted(self.first_responses.items())
        }
        texts: Counter[str] = Counter()
        negative: Counter[str] = Counter()
        for (kind, language, band), count in self.texts.items():
            texts[f"{kind}:{language}"] += count
            negative[f"{kind}:{language}"] += count * (band in ("negative", "very_negative"))
        return {
            "tickets": {"by_category": total(0), "by_queue": total(1), "by_band": total(2)},
            "first_response_by_queue": sla,
            "texts": {
                key: {"texts": texts[key], "negative_share": round(negative[key] / texts[key], 4)}
                for key in sorted(texts)
            },
            "sentiment_by_segment": {
                segment: {"texts": count, "average": _average(count, e4)}
                for segment, (count, e4) in sorted(self.by_segment.items())
            },
            "sentiment_by_month": {
                f"{month // 12}-{month % 12 + 1:02d}": {"texts": c, "average": _average(c, e4)}
                for month, (c, e4) in sorted(self.by_month.items())
            },
        }
