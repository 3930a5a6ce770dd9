"""Metric families both runners expose: what the engines were fed and gave, the business
KPIs, and the churn model's health. Built at scrape time from plain counts
(``streams/edge_counts.py``, ``state/kpis.py``), so the hot path never touches Prometheus.

Every label comes from a closed set: event types, reasons, change kinds, journey ids,
outcomes, funnel steps, ticket priorities, scores, stages and tiers; never an id. The
worker adds its own families (``streams/web.py``); replay serves these alone
(``serve_metrics``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, get_args

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from churn.model import ChurnLearner, LinearScorer
from rules.loader import RuleSet
from schemas.decode import DEAD_LETTER_REASONS
from schemas.events import EVENT_TYPES
from state.audit import ErasureReason
from state.changes import ChangeKind
from state.kpis import (
    CHANNELS,
    FIRST_RESPONSE_BUCKETS,
    FUNNEL_STEPS,
    MESSAGE_OUTCOMES,
    NPS_GROUPS,
    PRIORITIES,
    KpiCounts,
)
from state.lifecycle import STAGES
from state.population import POINT_MOVEMENTS, Population
from state.service_kpis import ServiceCounts
from streams.edge_counts import LATENCY_BUCKETS, EdgeCounts


class Tallies(Protocol):
    """What a runner knows about its engines (``PartitionEngines`` in the worker)."""

    @property
    def counts(self) -> EdgeCounts: ...

    def duplicates(self) -> int: ...
    def late(self) -> int: ...
    def profiles(self) -> int: ...
    def kpis(self) -> KpiCounts: ...
    def population(self) -> Population: ...


def loyalty_metrics(rules: RuleSet) -> Iterator[Any]:
    """What a point is worth under the rules' program (none without one)."""
    if rules.loyalty is not None:
        yield GaugeMetricFamily(
            "rapport_point_value",
            "What one loyalty point is worth in the shop's currency (loyalty.yaml).",
            value=float(rules.loyalty.point_value),
        )


def condition_metrics(rules: RuleSet) -> Iterator[Any]:
    """Conditions that failed when they ran (a division by zero), each taken as false."""
    yield labelled(
        "rapport_condition_failures",
        "Evaluations of a rule's condition that failed (for example a division by zero) and "
        "counted as false, by rule (journey id and field, or tag).",
        ["rule"],
        {(condition.rule,): condition.failures for condition in rules.conditions()},
    )


def engine_metrics(engines: Tallies) -> Iterator[Any]:
    """What the engines were fed and gave, counted at the edge (``EdgeCounts``)."""
    counts = engines.counts
    yield labelled(
        "rapport_events",
        "Valid events read, by type.",
        ["type"],
        _every(EVENT_TYPES, counts.events_by_type()),
    )
    yield labelled(
        "rapport_dead_letters",
        "Records refused, by reason.",
        ["reason"],
        _every(DEAD_LETTER_REASONS, counts.dead_letters_by_reason),
    )
    yield labelled(
        "rapport_records_ignored",
        "Well-formed records of calls Rapport does not model (Segment page, screen, alias, "
        "group, and track events it does not map), by call type.",
        ["call"],
        _every((), counts.ignored_by_call()),
    )
    yield CounterMetricFamily(
        "rapport_duplicate_events",
        "Events skipped because they were applied before (redeliveries).",
        value=engines.duplicates(),
    )
    yield CounterMetricFamily(
        "rapport_late_events",
        "Events older than the watermark (later than the allowed lateness).",
        value=engines.late(),
    )
    yield labelled(
        "rapport_profile_changes",
        "Profile changes, by kind.",
        ["kind"],
        _every(get_args(ChangeKind), counts.changes_by_kind),
    )
    yield labelled(
        "rapport_journey_runs",
        "Journey runs entered, exited, completed and converted, by journey and arm.",
        ["journey", "milestone", "arm"],
        counts.journey_runs,
    )
    value = counts.journey_value
    for what, name, text in (
        ("coupons_issued", "rapport_coupons_issued", "Coupons sent, by journey and arm."),
        (
            "revenue",
            "rapport_journey_revenue",
            "Totals of the orders that converted journey runs (revenue per customer is this "
            'over rapport_journey_runs{milestone="entered"}), by journey and arm.',
        ),
        (
            "coupon_discount",
            "rapport_coupon_discount",
            "Discount given by redeemed coupons (currency units), by the journey and arm "
            "that issued them; redemptions are rapport_journey_runs{milestone="
            '"coupon_redeemed"}.',
        ),
        (
            "coupon_revenue",
            "rapport_coupon_revenue",
            "Totals of the orders that redeemed a coupon, by the journey and arm that issued it.",
        ),
    ):
        yield labelled(
            name,
            text,
            ["journey", "arm"],
            {(j, a): v for (j, a, w), v in value.items() if w == what},
        )
    yield labelled(
        "rapport_journey_actions",
        "Journey actions by journey and status (sent, deferred, suppressed), with the "
        "suppression reason.",
        ["journey", "status", "reason"],
        counts.journey_actions,
    )
    yield labelled(
        "rapport_churn_labels_given",
        "Churn labels the engines gave, by outcome.",
        ["outcome"],
        _every(("churned", "retained"), counts.churn_labels),
    )
    yield labelled(
        "rapport_erasures",
        "Erasures carried out: asked for by the customer (request), or a profile "
        "anonymised after the retention period without an event (retention).",
        ["reason"],
        _every(get_args(ErasureReason), counts.erasures),
    )
    yield GaugeMetricFamily(
        "rapport_profiles", "Profiles held for the partitions owned.", value=engines.profiles()
    )
    latency = HistogramMetricFamily(
        "rapport_event_latency_seconds",
        "How old events were when they were handled (wall clock less event time).",
    )
    latency.add_metric(
        [], _buckets(LATENCY_BUCKETS, counts.latency_counts), sum_value=counts.latency_sum
    )
    yield latency


#: Upper bounds of the sentiment bands (routing.yaml's defaults), for the segment histogram.
SENTIMENT_BUCKETS: tuple[float, ...] = (-0.6, -0.25, 0.25, 1.0)
_BAND_BUCKET = {"very_negative": 0, "negative": 1, "neutral": 2, "positive": 3}


def service_desk_metrics(service: ServiceCounts) -> Iterator[Any]:
    """Tickets by category, queue and sentiment band; first responses by queue; texts read
    by kind, language and band; what customers wrote by RFM segment (a histogram of bands:
    the share below -0.25 over time is the segment's trend; with buckets below zero a
    histogram has no ``_sum`` or ``_count`` under OpenMetrics, so ``le="+Inf"`` is the
    count and the mean is in the replay summary). Labels come from routing.yaml
    (categories, queues), the bands and the segments: only combinations seen are shown."""
    yield labelled(
        "rapport_tickets_routed",
        "New tickets by category, queue and sentiment band (routing.yaml).",
        ["category", "queue", "band"],
        dict(service.tickets),
    )
    yield labelled(
        "rapport_queue_first_responses",
        "First agent responses by queue, and whether the routed priority's SLA was met.",
        ["queue", "sla"],
        {
            (queue, verdict): getattr(responses, verdict)
            for queue, responses in service.first_responses.items()
            for verdict in ("met", "missed")
        },
    )
    seconds = HistogramMetricFamily(
        "rapport_queue_first_response_seconds",
        "Time from a ticket's opening to its first agent response, by queue.",
        labels=["queue"],
    )
    for queue, responses in sorted(service.first_responses.items()):
        seconds.add_metric(
            [queue],
            _buckets(FIRST_RESPONSE_BUCKETS, responses.buckets),
            sum_value=responses.seconds,
        )
    yield seconds
    yield labelled(
        "rapport_texts_read",
        "Texts read for sentiment, by kind (ticket, reply, rating, review), language (zh, "
        "en, other: not scored) and band.",
        ["kind", "language", "band"],
        dict(service.texts),
    )
    histogram = HistogramMetricFamily(
        "rapport_customer_sentiment",
        "Sentiment (-1..1) of what customers wrote, by the RFM segment they were in.",
        labels=["segment"],
    )
    for segment, (_, total_e4) in sorted(service.by_segment.items()):
        counts = [0] * (len(SENTIMENT_BUCKETS) + 1)
        for band, index in _BAND_BUCKET.items():
            counts[index] = service.segment_bands[(segment, band)]
        histogram.add_metric(
            [segment], _buckets(SENTIMENT_BUCKETS, counts), sum_value=total_e4 / 10_000
        )
    yield histogram


def kpi_metrics(engines: Tallies) -> Iterator[Any]:
    """The business KPIs (``state/kpis.py``): flows as counters, the customer base as gauges.
    Series of the closed sets are always there, at 0 until counted."""
    kpis = engines.kpis()
    yield labelled(
        "rapport_funnel_steps",
        "Purchase cycles reaching each funnel step: viewed, carted, checkout, ordered.",
        ["step"],
        _every(FUNNEL_STEPS, kpis.funnel),
    )
    yield CounterMetricFamily(
        "rapport_first_orders", "Customers who placed their first order.", value=kpis.first_orders
    )
    yield CounterMetricFamily(
        "rapport_second_orders",
        "Customers who placed their second order (became repeat buyers).",
        value=kpis.second_orders,
    )
    yield labelled(
        "rapport_tickets_opened",
        "Support tickets opened, by priority and whether they are complaints.",
        ["priority", "complaint"],
        {
            (priority, str(complaint).lower()): kpis.tickets_opened[(priority, complaint)]
            for priority in PRIORITIES
            for complaint in (False, True)
        },
    )
    responses = kpis.first_responses
    yield labelled(
        "rapport_ticket_first_responses",
        "First agent responses to tickets, by priority and whether the priority's SLA was met.",
        ["priority", "sla"],
        {
            (priority, verdict): getattr(responses[priority], verdict)
            if priority in responses
            else 0
            for priority in PRIORITIES
            for verdict in ("met", "missed")
        },
    )
    first_response = HistogramMetricFamily(
        "rapport_ticket_first_response_seconds",
        "Time from a ticket's opening to its first agent response, by priority.",
        labels=["priority"],
    )
    for priority in PRIORITIES:
        seen = responses.get(priority)
        counts = seen.buckets if seen else [0] * (len(FIRST_RESPONSE_BUCKETS) + 1)
        first_response.add_metric(
            [priority],
            _buckets(FIRST_RESPONSE_BUCKETS, counts),
            sum_value=seen.seconds if seen else 0.0,
        )
    yield first_response
    yield from service_desk_metrics(kpis.service)
    yield labelled(
        "rapport_messages",
        "Delivery feedback on sent messages, by channel and outcome (delivered, bounced, "
        "complained, opened, clicked, unsubscribed).",
        ["channel", "outcome"],
        {
            (channel, outcome): kpis.messages[(channel, outcome)]
            for channel in CHANNELS
            for outcome in MESSAGE_OUTCOMES
        },
    )
    yield labelled(
        "rapport_journey_messages",
        "Delivery feedback on the messages of each journey, by channel and outcome (feedback "
        "that names its journey).",
        ["journey", "channel", "outcome"],
        dict(kpis.journey_messages),
    )
    yield labelled(
        "rapport_csat_ratings",
        "Customer satisfaction ratings, by score (1-5).",
        ["score"],
        {(str(score),): kpis.csat[score] for score in range(1, 6)},
    )
    yield CounterMetricFamily(
        "rapport_csat_score",
        "Sum of the CSAT scores given: divided by rapport_csat_ratings_total, the average.",
        value=sum(score * n for score, n in kpis.csat.items()),
    )
    yield labelled(
        "rapport_nps_ratings",
        "Net promoter ratings, by group (detractor 0-6, passive 7-8, promoter 9-10).",
        ["group"],
        _every(NPS_GROUPS, kpis.nps),
    )
    base = engines.population()
    yield gauges(
        "rapport_customers_by_stage",
        "Customers held, by lifecycle stage.",
        ["stage"],
        _every(STAGES, base.stages),
    )
    yield gauges(
        "rapport_customers_by_tier",
        "Customers held, by membership tier.",
        ["tier"],
        _every((), base.tiers),
    )
    yield GaugeMetricFamily("rapport_customers", "Customers held.", value=base.customers)
    yield GaugeMetricFamily(
        "rapport_visitors", "Anonymous visitors' profiles held.", value=base.visitors
    )
    yield GaugeMetricFamily(
        "rapport_buyers", "Customers held with at least one order.", value=base.buyers
    )
    yield GaugeMetricFamily(
        "rapport_repeat_buyers", "Customers held with two orders or more.", value=base.repeat_buyers
    )
    yield GaugeMetricFamily(
        "rapport_points_members",
        "Customers held with a loyalty points ledger.",
        value=base.points_members,
    )
    yield GaugeMetricFamily(
        "rapport_points_outstanding",
        "Loyalty points the customers held can spend now: times rapport_point_value, the "
        "liability.",
        value=base.points_outstanding,
    )
    yield GaugeMetricFamily(
        "rapport_points_pending",
        "Loyalty points of orders still inside their return window.",
        value=base.points_pending,
    )
    yield gauges(
        "rapport_points_moved",
        "Lifetime points of the profiles held, by movement (earned, redeemed, expired, "
        "clawed_back, shortfall), redemptions refused (refused) and lots merged (merged).",
        ["movement"],
        _every(POINT_MOVEMENTS, base.points_moved),
    )


def churn_metrics(scorer: LinearScorer, learner: ChurnLearner | None) -> Iterator[Any]:
    """The model a runner scores with; its health where the runner runs the learner."""
    yield GaugeMetricFamily(
        "rapport_churn_model_version",
        "Labels learned by the churn model this worker scores with (0: none yet).",
        value=scorer.version,
    )
    yield GaugeMetricFamily(
        "rapport_churn_model_ready",
        "1 once the churn model has learned enough labels of each kind to give scores.",
        value=1.0 if scorer.ready else 0.0,
    )
    if learner is None:
        return
    yield gauges(
        "rapport_churn_labels_needed",
        "Labels of each kind the churn model still has to learn before it gives scores "
        "(churn.min_labels); 0 and 0 once ready.",
        ["outcome"],
        {(outcome,): count for outcome, count in learner.labels_needed().items()},
    )
    health = learner.health
    yield CounterMetricFamily(
        "rapport_churn_labels",
        "Churn labels learned by this worker's learner.",
        value=health.labels,
    )
    yield CounterMetricFamily(
        "rapport_churn_drifts", "Drifts ADWIN detected in the model's error.", value=health.drifts
    )
    if health.auc_unknown() is None:  # absent while it means nothing (one kind of label)
        yield GaugeMetricFamily(
            "rapport_churn_roc_auc",
            "Rolling ROC AUC of the scores snapshots were given, judged at their labels.",
            value=health.roc_auc,
        )
    if health.labels > health.unscored:
        yield GaugeMetricFamily(
            "rapport_churn_log_loss",
            "Rolling log loss of the scores snapshots were given, judged at their labels.",
            value=health.mean_log_loss,
        )


def _every(known: Iterable[str], counts: Mapping[str, int]) -> dict[tuple[str], int]:
    """One sample per value of a closed set, at 0 until counted (so rates exist from the
    start), plus any value counted outside it."""
    every = {(value,): 0 for value in known}
    every.update({(value,): n for value, n in counts.items()})
    return every


def _buckets(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Cumulative (upper bound, count) pairs from per-bucket counts (the last unbounded)."""
    cumulative, buckets = 0, list[tuple[str, float]]()
    for bound, count in zip((*bounds, math.inf), counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == math.inf else repr(float(bound)), cumulative))
    return buckets


_Labels = TypeVar("_Labels", bound=tuple[str, ...])


def labelled(
    name: str, documentation: str, labels: list[str], counts: Mapping[_Labels, float]
) -> CounterMetricFamily:
    """A counter family with one sample per key of ``counts``, in key order."""
    return _filled(CounterMetricFamily(name, documentation, labels=labels), counts)


def gauges(
    name: str, documentation: str, labels: list[str], values: Mapping[_Labels, int]
) -> GaugeMetricFamily:
    """A gauge family with one sample per key of ``values``, in key order."""
    return _filled(GaugeMetricFamily(name, documentation, labels=labels), values)


_Family = TypeVar("_Family", CounterMetricFamily, GaugeMetricFamily)


def _filled(family: _Family, values: Mapping[_Labels, float]) -> _Family:
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


class FunctionCollector(Collector):
    """Collects whatever ``families`` yields when scraped."""

    def __init__(self, families: Callable[[], Iterator[Any]]) -> None:
        self._families = families

    def collect(self) -> Iterator[Any]:
        return self._families()


class OwnerThreadCollector(Collector):
    """Builds the families on the thread that owns the counts, never on the HTTP thread.

    A runner that mutates its state on one thread (replay) calls ``serve`` at its
    checkpoints: a scrape waits for the next one and gets families built there, so it
    never reads a dict while it changes. After ``close`` a scrape builds them itself.
    """

    def __init__(self, families: Callable[[], Iterator[Any]], timeout: float = 10.0) -> None:
        self._families = families
        self._timeout = timeout
        self._lock = threading.Lock()
        self._waiting: list[Future[list[Any]]] = []
        self._closed = False

    def collect(self) -> Iterator[Any]:
        with self._lock:
            if self._closed:
                return iter(list(self._families()))
            wanted: Future[list[Any]] = Future()
            self._waiting.append(wanted)
        return iter(wanted.result(timeout=self._timeout))

    @property
    def wanted(self) -> bool:
        return bool(self._waiting)

    def serve(self) -> None:
        """Answer the scrapes waiting (on the owner's thread)."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        if waiting:
            families = list(self._families())
            for future in waiting:
                future.set_result(families)

    def close(self) -> None:
        """The owner is done: answer what waits; later scrapes build families themselves."""
        with self._lock:
            self._closed = True
        self.serve()


class MetricsServer:
    """``/metrics`` served from a background thread (``prometheus_client``'s server)."""

    def __init__(self, collector: Collector, port: int, host: str = "127.0.0.1") -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
