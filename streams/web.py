"""The worker's HTTP endpoints (Faust's web server, on ``worker.web_port``).

============================  ================================================================
``GET /health``               200 while the process serves requests (liveness)
``GET /ready``                200 once the tables are recovered and no rebalance is under
                              way, else 503 (readiness: route traffic, count as up)
``GET /rules``                the active rules version
``GET /profiles/{id}``        the profile of a customer (or ``anon:<id>`` visitor): its read
                              model and the whole stored profile. Asked of any worker, it is
                              answered by the one that owns the key's partition (the request
                              is forwarded once); 404 when nobody knows the key, 503
                              while its partition is recovering
``GET /metrics``              Prometheus text format
============================  ================================================================

Routing finds the partition the way producers do, by hashing the key with Kafka's
murmur2 partitioner (the Java client's default; set ``partitioner=murmur2_random`` in
librdkafka-based producers).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector
from yarl import URL

from state.read_model import read_model_fields
from streams.churn_io import ChurnIO
from streams.edge_counts import LATENCY_BUCKETS

if TYPE_CHECKING:
    from streams.partitions import PartitionEngines
    from streams.worker import Worker

_ENCODER = msgspec.json.Encoder()
#: Set on a lookup one worker passes to another, so it is never passed on again.
FORWARDED = "X-Rapport-Forwarded"


def register_pages(worker: Worker) -> None:
    app = worker.app
    registry = CollectorRegistry(auto_describe=True)
    registry.register(WorkerCollector(worker))

    @app.page("/health")
    async def health(view: Any, request: Any) -> Any:
        return view.json({"status": "alive"})

    @app.page("/ready")
    async def ready(view: Any, request: Any) -> Any:
        body = {"ready": worker.ready, "partitions": worker.assigned_partitions()}
        return view.json(body, status=200 if worker.ready else 503)

    @app.page("/rules")
    async def rules(view: Any, request: Any) -> Any:
        return view.json({"version": worker.engines.rules.version})

    @app.page("/metrics")
    async def metrics(view: Any, request: Any) -> Any:
        return view.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")

    @app.page("/profiles/{key}")
    async def profile(view: Any, request: Any, key: str) -> Any:
        partition = worker.partition_of(key)
        owner = _owner(worker, partition)
        if owner is None:
            return view.json({"error": f"partition {partition} has no owner yet"}, status=503)
        if owner != str(app.conf.canonical_url):
            if request.headers.get(FORWARDED):
                return view.json({"error": "forwarded to a worker that does not own it"}, 503)
            url = URL(owner) / "profiles" / key
            async with app.http_client.get(url, headers={FORWARDED: "1"}) as reply:
                answer = await reply.read()
                return view.bytes(answer, content_type=reply.content_type, status=reply.status)
        if not worker.owns(partition):
            return view.json({"error": f"partition {partition} is recovering"}, status=503)
        found = worker.engines.lookup(partition, key)
        if found is None:
            return view.json({"error": f"no profile {key!r}"}, status=404)
        body = {
            "partition": partition,
            "read_model": read_model_fields(found),
            "profile": msgspec.json.decode(_ENCODER.encode(found)),
        }
        return view.json(body)


def _owner(worker: Worker, partition: int) -> str | None:
    """The web address of the worker that owns ``partition`` of the events topic."""
    topic = worker.names.events
    for url, topics in worker.app.router.external_topics_metadata().items():
        if partition in topics.get(topic, ()):
            return str(url)
    return None


class WorkerCollector(Collector):
    """The worker's own counts, read at scrape time (the full set is issue 6's)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Any]:
        worker = self.worker
        yield GaugeMetricFamily(
            "rapport_worker_ready",
            "1 when tables are recovered and no rebalance runs.",
            value=1.0 if worker.ready else 0.0,
        )
        yield GaugeMetricFamily(
            "rapport_partitions_assigned",
            "Input partitions this worker owns.",
            value=len(worker.assigned_partitions()),
        )
        yield CounterMetricFamily(
            "rapport_actions_dedup_skipped",
            "Actions not published again because their id was claimed and sent before.",
            value=worker.skipped_actions,
        )
        yield GaugeMetricFamily(
            "rapport_identity_parked_events",
            "Events held for customers whose visitor profile is on its way from another "
            "partition (stays high if identity records stop flowing).",
            value=worker.engines.parked_events(),
        )
        yield from engine_metrics(worker.engines)
        info = InfoMetricFamily("rapport_rules", "The active rules version.")
        info.add_metric([], {"version": worker.engines.rules.version})
        yield info
        yield CounterMetricFamily(
            "rapport_rules_reloads", "Rule changes swapped in.", value=worker.rules_reloaded
        )
        yield CounterMetricFamily(
            "rapport_rules_reload_failures",
            "Rule changes refused as invalid (the last good rules stay).",
            value=worker.rules_rejected,
        )
        redis = worker.redis
        if redis is not None:
            yield GaugeMetricFamily(
                "rapport_redis_up",
                "0 while calls to Redis fail (actions are held).",
                value=0.0 if redis.down_since is not None else 1.0,
            )
            yield CounterMetricFamily(
                "rapport_redis_errors", "Redis calls that failed.", value=redis.failed_calls
            )
            yield CounterMetricFamily(
                "rapport_redis_outages", "Times Redis became unreachable.", value=redis.outages
            )
        delivery = worker.delivery
        if delivery is not None:
            yield _labelled(
                "rapport_deliveries",
                "Records of the actions topic by delivery outcome.",
                ["outcome"],
                {(outcome,): count for outcome, count in delivery.counts.items()},
            )
            yield CounterMetricFamily(
                "rapport_delivery_retries",
                "Delivery tries that failed and were tried again.",
                value=delivery.retries,
            )
        churn = worker.churn
        if churn is not None:
            yield from _churn_metrics(churn)


def _churn_metrics(churn: ChurnIO) -> Iterator[Any]:
    """The model this worker scores with; its health where this worker runs the learner."""
    scorer = churn.scorer()
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
    learner = churn.learner
    if learner is None:
        return
    health = learner.health
    yield CounterMetricFamily(
        "rapport_churn_labels",
        "Churn labels learned by this worker's learner.",
        value=health.labels,
    )
    yield CounterMetricFamily(
        "rapport_churn_drifts", "Drifts ADWIN detected in the model's error.", value=health.drifts
    )
    if health.labels > health.unscored:
        yield GaugeMetricFamily(
            "rapport_churn_roc_auc",
            "Rolling ROC AUC of the scores snapshots were given, judged at their labels.",
            value=health.roc_auc,
        )
        yield GaugeMetricFamily(
            "rapport_churn_log_loss",
            "Rolling log loss of the scores snapshots were given, judged at their labels.",
            value=health.mean_log_loss,
        )


def engine_metrics(engines: PartitionEngines) -> Iterator[Any]:
    """What the engines were fed and gave, counted at the edge (``EdgeCounts``). Every
    label is from a closed set: event types, reasons, change kinds, journey ids, outcomes."""
    counts = engines.counts
    yield _labelled(
        "rapport_events",
        "Valid events read, by type.",
        ["type"],
        {(kind,): n for kind, n in counts.events_by_type.items()},
    )
    yield _labelled(
        "rapport_dead_letters",
        "Records refused, by reason.",
        ["reason"],
        {(reason,): n for reason, n in counts.dead_letters_by_reason.items()},
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
    yield _labelled(
        "rapport_profile_changes",
        "Profile changes, by kind.",
        ["kind"],
        {(kind,): n for kind, n in counts.changes_by_kind.items()},
    )
    yield _labelled(
        "rapport_journey_runs",
        "Journey runs entered, exited, completed and converted, by journey and arm.",
        ["journey", "milestone", "arm"],
        counts.journey_runs,
    )
    yield _labelled(
        "rapport_journey_actions",
        "Journey actions by journey and status (sent, deferred, suppressed), with the "
        "suppression reason.",
        ["journey", "status", "reason"],
        counts.journey_actions,
    )
    yield _labelled(
        "rapport_churn_labels_given",
        "Churn labels the engines gave, by outcome.",
        ["outcome"],
        {(outcome,): n for outcome, n in counts.churn_labels.items()},
    )
    yield GaugeMetricFamily(
        "rapport_profiles", "Profiles held for the partitions owned.", value=engines.profiles()
    )
    cumulative, buckets = 0, []
    for bound, count in zip((*LATENCY_BUCKETS, math.inf), counts.latency_counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == math.inf else repr(float(bound)), cumulative))
    yield HistogramMetricFamily(
        "rapport_event_latency_seconds",
        "How old events were when the worker handled them (wall clock less event time).",
        buckets=buckets,
        sum_value=counts.latency_sum,
    )


_Labels = TypeVar("_Labels", bound=tuple[str, ...])


def _labelled(
    name: str, documentation: str, labels: list[str], counts: Mapping[_Labels, int]
) -> CounterMetricFamily:
    """A counter family with one sample per key of ``counts``, in key order."""
    family = CounterMetricFamily(name, documentation, labels=labels)
    for values, count in sorted(counts.items()):
        family.add_metric(list(values), count)
    return family
