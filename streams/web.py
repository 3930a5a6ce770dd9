"""The worker's HTTP endpoints (Faust's web server, on ``worker.web_bind``:``web_port``).

============================  ================================================================
``GET /health``               200 while the process serves requests (liveness)
``GET /ready``                200 once the data plane has its partitions and has rebuilt
                              their tables, and no rebalance is under way, else 503 (readiness: route traffic, count as up)
``GET /metrics``              Prometheus text format
``GET /rules``                the active rules version (token)
``GET /inbox/{customer}``     the customer's in-app messages, newest first, with ``read``
                              and the unread count (token)
``POST /inbox/{customer}/{id}/read``  marks one read (token); 404 if the inbox lacks it
``GET|POST /unsubscribe``     the signed link of every message (``?c=&ch=&s=``): GET shows a
                              confirmation page, POST (its button, or a mail client's
                              RFC 8058 one-click) withdraws consent (no token: the
                              signature is the proof)
``POST /feedback``            delivery feedback events (``message.*``), signed with
                              ``worker.feedback_secret_env`` instead of the token
                              (``streams/feedback.py``): 202 once on the events topic
``GET /profiles/{id}``        a customer (or ``anon:<id>`` visitor), token: by default the
                              read model's fields only (tier, stage, RFM, churn, tags,
                              consent, open cart, order totals); ``?view=full`` the whole
                              stored profile too. Asked of any worker, it is answered by the
                              one that owns the key's partition (the request is forwarded
                              once); 404 when nobody knows the key, 503 while its partition
                              is recovering
============================  ================================================================

Everything but health, readiness and metrics needs ``Authorization: Bearer <token>`` with
``worker.api_token``: 401 without it or with another, 403 when no token is configured.
The server listens on loopback unless ``worker.web_bind`` says otherwise.

Routing finds the partition the way producers do, by hashing the key with Kafka's
murmur2 partitioner (the Java client's default; set ``partitioner=murmur2_random`` in
librdkafka-based producers), and the owner from ``<prefix>owners``, where each worker
writes the partitions it is given (``agents/owners.py``).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, get_args

import msgspec
from faust.web import View
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from yarl import URL

from rules.message_context import UnsubscribeLinks
from schemas.events import Channel
from state.read_model import read_model_fields
from streams.feedback import FeedbackRefused, feedback_records, verify
from streams.inbox import Inbox
from streams.metrics import (
    churn_metrics,
    condition_metrics,
    engine_metrics,
    gauges,
    kpi_metrics,
    labelled,
    loyalty_metrics,
)
from streams.settings import InboxAdapter

if TYPE_CHECKING:
    from streams.worker import Worker

_ENCODER = msgspec.json.Encoder()
CHANNELS = frozenset(get_args(Channel))
T = TypeVar("T")
#: Set on a lookup one worker passes to another, so it is never passed on again.
FORWARDED = "X-Rapport-Forwarded"


def bearer_refusal(header: str | None, token: str | None) -> tuple[int, str] | None:
    """Why a request with this ``Authorization`` header is refused, or None to serve it.

    >>> bearer_refusal(None, None)[0], bearer_refusal("Bearer x", "y" * 24)[0]
    (403, 401)
    >>> bearer_refusal("Bearer " + "y" * 24, "y" * 24) is None
    True
    """
    if token is None:
        return 403, "profile lookups are off: set worker.api_token (or api_token_file)"
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        return 401, "send Authorization: Bearer <worker.api_token>"
    return None


def register_pages(worker: Worker) -> None:
    app = worker.app
    registry = CollectorRegistry(auto_describe=True)
    registry.register(WorkerCollector(worker))
    token = worker.settings.worker.token()

    def refused(view: Any, request: Any) -> Any:
        refusal = bearer_refusal(request.headers.get("Authorization"), token)
        if refusal is None:
            return None
        status, detail = refusal
        headers = {"WWW-Authenticate": 'Bearer realm="rapport"'} if status == 401 else None
        return view.json({"error": detail}, status=status, headers=headers)

    feedback_secret = worker.settings.worker.feedback_secret(os.environ)
    skew = worker.settings.engine.max_clock_skew_seconds

    @app.page("/feedback")
    class Feedback(View):
        async def post(self, request: Any) -> Any:
            if feedback_secret is None:
                return self.json(
                    {"error": "feedback is off: set worker.feedback_secret_env"}, status=403
                )
            body = await request.read()
            headers = request.headers
            try:
                verify(
                    body,
                    headers.get("X-Rapport-Timestamp"),
                    headers.get("Idempotency-Key"),
                    headers.get("X-Rapport-Signature"),
                    feedback_secret,
                    time.time(),
                )
                records = feedback_records(body, time.time(), skew)
            except FeedbackRefused as refused:
                answer: dict[str, Any] = {"error": refused.detail}
                if refused.problems:
                    answer["problems"] = refused.problems
                return self.json(answer, status=refused.status)
            for record in records:
                await worker.produce(worker.names.events, record.key, record.value)
            worker.feedback_received += len(records)
            return self.json({"accepted": len(records)}, status=202)

    inbox = _inbox_of(worker)

    @app.page("/inbox/{customer}")
    class InboxPage(View):
        async def get(self, request: Any, customer: str) -> Any:
            if (refusal := refused(self, request)) is not None:
                return refusal
            if inbox is None:
                return self.json({"error": "no inbox adapter is configured"}, status=404)
            return self.json(await inbox.list(customer, time.time()))

    @app.page("/inbox/{customer}/{message}/read")
    class InboxRead(View):
        async def post(self, request: Any, customer: str, message: str) -> Any:
            if (refusal := refused(self, request)) is not None:
                return refusal
            if inbox is None:
                return self.json({"error": "no inbox adapter is configured"}, status=404)
            if not await inbox.mark_read(customer, message):
                return self.json({"error": f"no message {message!r} for {customer}"}, status=404)
            return self.json({"read": message})

    links = UnsubscribeLinks(worker.settings.engine.engine_config().message_key)

    @app.page("/unsubscribe")
    class Unsubscribe(View):
        def _checked(self, request: Any) -> tuple[str, str] | Any:
            customer = request.query.get("c", "")
            channel = request.query.get("ch", "")
            signature = request.query.get("s", "")
            if (
                channel not in CHANNELS
                or not customer
                or not links.verify(customer, channel, signature)
            ):
                return self.html(_page("This link is not valid."), status=400)
            return customer, channel

        async def get(self, request: Any) -> Any:
            checked = self._checked(request)
            if not isinstance(checked, tuple):
                return checked
            _, channel = checked
            form = (
                f'<form method="post"><p>Stop receiving {channel} messages?</p>'
                '<button type="submit">Unsubscribe</button></form>'
            )
            return self.html(_page(form))

        async def post(self, request: Any) -> Any:
            checked = self._checked(request)
            if not isinstance(checked, tuple):
                return checked
            customer, channel = checked
            now = time.time()
            record = {
                "type": "message.unsubscribed",
                "event_id": f"unsubscribe-{customer}-{channel}-{now:.3f}",
                "customer_id": customer,
                "occurred_at": datetime.fromtimestamp(now, UTC).isoformat(),
                "properties": {"channel": channel},
            }
            await worker.produce(worker.names.events, customer.encode(), _ENCODER.encode(record))
            worker.feedback_received += 1
            return self.html(_page(f"You will not receive {channel} messages any more."))

    @app.page("/health")
    async def health(view: Any, request: Any) -> Any:
        return view.json({"status": "alive"})

    @app.page("/ready")
    async def ready(view: Any, request: Any) -> Any:
        body = {"ready": worker.ready, "partitions": worker.assigned_partitions()}
        return view.json(body, status=200 if worker.ready else 503)

    @app.page("/rules")
    async def rules(view: Any, request: Any) -> Any:
        return refused(view, request) or view.json({"version": worker.engines.rules.version})

    @app.page("/metrics")
    async def metrics(view: Any, request: Any) -> Any:
        text = await _held_still(worker, lambda: generate_latest(registry))
        return view.bytes(text, content_type="text/plain; version=0.0.4")

    @app.page("/profiles/{key}")
    async def profile(view: Any, request: Any, key: str) -> Any:
        if (refusal := refused(view, request)) is not None:
            return refusal
        full = request.query.get("view") == "full"
        partition = worker.partition_of(key)
        owner = worker.owners.get(partition)
        if worker.owns(partition):
            owner = str(app.conf.canonical_url)
        if owner is None:
            return view.json({"error": f"partition {partition} has no owner yet"}, status=503)
        if owner != str(app.conf.canonical_url):
            if request.headers.get(FORWARDED):
                return view.json({"error": "forwarded to a worker that does not own it"}, 503)
            url = (URL(owner) / "profiles" / key).with_query(request.query)
            headers = {FORWARDED: "1", "Authorization": request.headers["Authorization"]}
            async with app.http_client.get(url, headers=headers) as reply:
                answer = await reply.read()
                return view.bytes(answer, content_type=reply.content_type, status=reply.status)

        def look_up() -> dict[str, Any] | None:
            if not worker.owns(partition):
                return {"recovering": True}
            found = worker.engines.lookup(partition, key)
            if found is None:
                return None
            body: dict[str, Any] = {
                "key": found.key,
                "partition": partition,
                "read_model": read_model_fields(found),
            }
            if full:
                body["profile"] = msgspec.json.decode(_ENCODER.encode(found))
            return body

        body = await _held_still(worker, look_up)
        if body is None:
            return view.json({"error": f"no profile {key!r}"}, status=404)
        if body.get("recovering"):
            return view.json({"error": f"partition {partition} is recovering"}, status=503)
        return view.json(body)


def _page(body: str) -> str:
    return (
        '<!doctype html><html lang="en"><meta charset="utf-8">'
        f"<title>Unsubscribe</title><body>{body}</body></html>"
    )


def _inbox_of(worker: Worker) -> Inbox | None:
    """The inbox the delivery stage writes to, when an ``inbox`` adapter is configured."""
    if worker.redis is None:
        return None
    for adapter in worker.settings.delivery.adapters.values():
        if isinstance(adapter, InboxAdapter):
            return Inbox(worker.redis, adapter)
    return None


async def _held_still(worker: Worker, function: Callable[[], T]) -> T:
    """``function``'s result, run between two batches of the data plane (off the event
    loop, which the data plane's Redis calls need)."""
    plane = worker.plane
    if plane is None:
        return function()
    result: T = await asyncio.get_running_loop().run_in_executor(None, plane.call, function)
    return result


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
            "rapport_feedback_events",
            "Delivery feedback events taken by POST /feedback and put on the events topic.",
            value=worker.feedback_received,
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
        yield from kpi_metrics(worker.engines)
        yield from condition_metrics(worker.engines.rules)
        yield from loyalty_metrics(worker.engines.rules)
        info = InfoMetricFamily("rapport_rules", "The active rules version.")
        info.add_metric([], {"version": worker.engines.rules.version})
        yield info
        yield CounterMetricFamily(
            "rapport_rules_reloads", "Rule changes swapped in.", value=worker.reloads.reloaded
        )
        yield CounterMetricFamily(
            "rapport_rules_reload_failures",
            "Rule changes refused as invalid (the last good rules stay).",
            value=worker.reloads.rejected,
        )
        yield gauges(
            "rapport_consumer_lag_records",
            "Records of an owned input partition not read yet (high watermark of the last "
            "fetch less the next offset to read).",
            ["topic", "partition"],
            {
                (topic, str(partition)): lag
                for (topic, partition), lag in worker.consumer_lag().items()
            },
        )
        yield labelled(
            "rapport_broker_errors",
            "Records the broker refused or failed to acknowledge, by operation.",
            ["operation"],
            {("produce",): worker.produce_errors()},
        )
        sizes = worker.engines.partition_sizes()
        yield gauges(
            "rapport_partition_profiles",
            "Profiles held in memory, per input partition owned.",
            ["partition"],
            {(str(p),): profiles for p, (profiles, _) in sizes.items()},
        )
        yield gauges(
            "rapport_partition_table_bytes",
            "Bytes of a partition's table as encoded (about what its profiles take in "
            "memory, and what its changelog holds), per input partition owned.",
            ["partition"],
            {(str(p),): encoded for p, (_, encoded) in sizes.items()},
        )
        yield GaugeMetricFamily(
            "rapport_state_bytes",
            "Bytes the local table stores take on disk (0 for the memory store).",
            value=worker.state_bytes(),
        )
        clients = [c for c in (worker.redis, worker.plane_redis) if c is not None]
        if clients:
            yield GaugeMetricFamily(
                "rapport_redis_up",
                "0 while calls to Redis fail (actions are held).",
                value=0.0 if any(c.down_since is not None for c in clients) else 1.0,
            )
            yield CounterMetricFamily(
                "rapport_redis_errors",
                "Redis calls that failed.",
                value=sum(c.failed_calls for c in clients),
            )
            yield CounterMetricFamily(
                "rapport_redis_outages",
                "Times Redis became unreachable.",
                value=sum(c.outages for c in clients),
            )
        delivery = worker.delivery
        if delivery is not None:
            yield labelled(
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
            yield labelled(
                "rapport_delivery_attempts",
                "Every delivery try (first ones and retries), by adapter.",
                ["adapter"],
                {(adapter,): count for adapter, count in delivery.attempts.items()},
            )
        churn = worker.churn
        if churn is not None:
            yield from churn_metrics(churn.scorer(), churn.learner)
