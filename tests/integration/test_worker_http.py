"""The workers' HTTP endpoints: health, readiness, rules version, metrics, routed lookups."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rules.loader import load_rules
from rules.message_context import DEVELOPMENT_KEY, UnsubscribeLinks
from state.profile import Profile
from state.read_model import read_model_fields
from streams.delivery import signature
from streams.generator import GeneratorConfig, generate_stream
from streams.inbox import Inbox, InboxMessage
from streams.redis_io import RedisIO
from streams.settings import InboxAdapter, RedisSettings, load_settings
from tests.integration.kafka_io import create_topic, produce, read_topic
from tests.integration.test_worker import _run_to_the_end
from tests.integration.worker_process import WorkerProcess, worker_env
from tests.servers import Server, free_port, prometheus_server

PARTITIONS = 4
REPO = Path(__file__).resolve().parents[2]
LEARNER_ONLY = {
    "rapport_churn_roc_auc",
    "rapport_churn_log_loss",
    "rapport_churn_labels_total",
    "rapport_churn_drifts_total",
}


#: The bearer token the workers of these tests are given (worker.api_token).
TOKEN = "test-token-" + "x" * 20
#: The secret that signs their POST /feedback (worker.feedback_secret_env).
FEEDBACK_SECRET = "feedback-secret-" + "f" * 32


def _get(port: int, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
            status = reply.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    if path == "/metrics":
        return status, body.decode()
    return status, json.loads(body)


def _wait_ready(port: int, worker: WorkerProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not worker.exited:
        try:
            if _get(port, "/ready")[0] == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.3)
    raise AssertionError(f"not ready after {timeout}s:\n{worker.log()[-3000:]}")


@dataclass
class TwoWorkers:
    ports: list[int]
    workers: list[WorkerProcess]
    want: Any
    #: port -> partitions it owns
    owned: dict[int, list[int]]
    produced: int
    #: The broker and the Redis the workers use, and their key prefix.
    redis: str = ""
    prefix: str = ""
    broker: str = ""


@pytest.fixture(scope="module")
def two_workers(
    broker: Server, redis: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TwoWorkers]:
    """Two workers with web endpoints that have handled a whole generated stream."""
    tmp_path = tmp_path_factory.mktemp("http")
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topic(broker.address, f"{prefix}events", PARTITIONS)
    config = GeneratorConfig(customers=60, days=14, seed=11, anonymous_share=0.0)
    produced = produce(broker.address, f"{prefix}events", generate_stream(config))
    ports = [free_port(), free_port()]
    workers = [
        WorkerProcess(
            tmp_path,
            worker_env(
                broker.address,
                redis.address,
                prefix,
                PARTITIONS,
                worker__clock="events",
                worker__web_port=str(port),
                worker__api_token=TOKEN,
                worker__feedback_secret_env="RAPPORT_TEST_FEEDBACK_SECRET",
                delivery__adapters=json.dumps(
                    {
                        "log": {"type": "log", "path": "build/deliveries.jsonl"},
                        "inbox": {"type": "inbox"},
                    }
                ),
            )
            | {"RAPPORT_TEST_FEEDBACK_SECRET": FEEDBACK_SECRET},
            name=f"w{port}",
        )
        for port in ports
    ]
    try:
        for port, worker in zip(ports, workers, strict=True):
            _wait_ready(port, worker)
        want, _ = _run_to_the_end(broker, prefix, produced, workers[0])
        for port, worker in zip(ports, workers, strict=True):
            _wait_ready(port, worker)  # a rebalance may have run meanwhile
        owned = {port: _get(port, "/ready")[1]["partitions"] for port in ports}
        yield TwoWorkers(
            ports, workers, want, owned, produced, redis.address, prefix, broker.address
        )
    finally:
        for worker in workers:
            worker.stop()


@pytest.mark.integration
def test_any_worker_answers_a_profile_lookup_by_asking_the_owner(two_workers: TwoWorkers) -> None:
    ports, want, owned = two_workers.ports, two_workers.want, two_workers.owned
    assert sorted(owned[ports[0]] + owned[ports[1]]) == list(range(PARTITIONS)), owned

    decoder = msgspec.json.Decoder(Profile)
    customers = sorted(key for key in want.profiles if not key.startswith("anon:"))
    seen = set()
    for key in customers[:12]:
        expected = msgspec.json.decode(want.profiles[key])
        answers = [_get(port, f"/profiles/{key}?view=full") for port in ports]
        for status, body in answers:
            assert status == 200, body
            assert body["profile"] == expected
            assert body["read_model"] == read_model_fields(decoder.decode(want.profiles[key]))
        seen.add(answers[0][1]["partition"])
        minimal = [_get(port, f"/profiles/{key}")[1] for port in ports]
        assert all(set(body) == {"key", "partition", "read_model"} for body in minimal)
    # Both workers own some of the keys asked for: half the answers were forwarded.
    assert seen & set(owned[ports[0]]), (seen, owned)
    assert seen & set(owned[ports[1]]), (seen, owned)

    assert _get(ports[1], "/profiles/nobody-at-all")[0] == 404
    assert _get(ports[0], "/health") == (200, {"status": "alive"})
    version = load_rules(load_settings().rules_dir).version
    assert _get(ports[1], "/rules") == (200, {"version": version})


@pytest.mark.integration
def test_only_health_readiness_and_metrics_answer_without_the_token(
    two_workers: TwoWorkers,
) -> None:
    port = two_workers.ports[0]
    key = sorted(k for k in two_workers.want.profiles if not k.startswith("anon:"))[0]
    for path in (f"/profiles/{key}", f"/profiles/{key}?view=full", "/rules"):
        assert _get(port, path, token=None)[0] == 401, path
        assert _get(port, path, token="wrong-" + TOKEN)[0] == 401, path
    assert _get(port, "/health", token=None)[0] == 200
    assert _get(port, "/ready", token=None)[0] == 200
    assert _get(port, "/metrics", token=None)[0] == 200


@pytest.mark.integration
def test_the_web_server_listens_on_loopback_only_by_default(two_workers: TwoWorkers) -> None:
    port = two_workers.ports[0]
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no address other than loopback")
    with pytest.raises(ConnectionRefusedError):  # nothing listens there
        socket.create_connection((address, port), timeout=3).close()
    socket.create_connection(("127.0.0.1", port), timeout=3).close()


def _outward_address() -> str | None:
    """An address of this machine that is not loopback, or None."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


@pytest.mark.integration
def test_metrics_show_the_work_done_and_pass_promtool(two_workers: TwoWorkers) -> None:
    ports, owned = two_workers.ports, two_workers.owned
    status, text = _get(ports[0], "/metrics")
    assert status == 200
    checked = subprocess.run(
        [_binary("promtool"), "check", "metrics"], input=text.encode(), capture_output=True
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert not checked.stdout.strip(), checked.stdout.decode()
    samples = _samples(text)
    assert samples["rapport_worker_ready"] == [1.0]
    assert samples["rapport_partitions_assigned"] == [len(owned[ports[0]])]
    assert samples["rapport_redis_up"] == [1.0]
    assert samples["rapport_rules_reload_failures_total"] == [0.0]
    assert samples["rapport_broker_errors_total"] == [0.0]
    assert sum(samples["rapport_events_total"]) > 0, "the worker counted no events"
    # Caught up: nothing left to read on the partitions it owns (and it read from each).
    assert samples["rapport_consumer_lag_records"] == [0.0] * len(owned[ports[0]])
    assert samples["rapport_state_bytes"][0] > 0  # RocksDB files under data_dir
    assert sum(samples["rapport_funnel_steps_total"]) > 0
    assert samples["rapport_customers"][0] > 0


@pytest.mark.integration
def test_a_real_prometheus_scrapes_the_workers_and_evaluates_every_rule_and_panel(
    two_workers: TwoWorkers, tmp_path: Path
) -> None:
    ports = two_workers.ports
    scraped = set()
    for port in ports:
        scraped |= set(_samples(_get(port, "/metrics")[1]))
    alerts = REPO / "config" / "prometheus" / "alerts.yml"
    targets = [f"127.0.0.1:{port}" for port in ports]
    with prometheus_server(tmp_path / "prometheus", targets, [alerts]) as prometheus:
        events = _poll(prometheus, "sum(rapport_events_total)", want=len(targets))
        # Every event was counted by the worker that read it (more if one was read again
        # after a rebalance).
        assert events >= two_workers.produced
        assert _poll(prometheus, "sum(up{job='rapport'})", want=1) == len(targets)
        groups = _api(prometheus, "rules", wait_for_rules=True)["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert len(rules) == 17
        assert [rule["name"] for rule in rules if rule["health"] != "ok"] == []
        recorded = {rule["name"] for rule in rules if rule["type"] == "recording"}
        dashboard = json.loads(
            (REPO / "config" / "grafana" / "dashboards" / "rapport.json").read_text()
        )
        queries = [
            target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
        ]
        for query in queries:
            answer = _api(prometheus, "query", query=query)
            assert answer is not None, query
        # Every rapport_ series a panel or a rule reads is one a worker exposes, or a
        # recording rule. The learner's figures appear on the worker that runs it from
        # its first label, AUC and log loss once it has judged one: a 14-day stream
        # gives no churn labels (the horizon is 90 days).
        named = set(re.findall(r"rapport[_:][a-z0-9_:]+", "\n".join(queries) + alerts.read_text()))
        unknown = named - scraped - recorded - LEARNER_ONLY
        assert not unknown, unknown


def _binary(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} not found: `make test` installs Debian's prometheus package"
    return found


def _samples(text: str) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample.value)
    return samples


def _api(server: Server, path: str, wait_for_rules: bool = False, **params: str) -> Any:
    """GET Prometheus's HTTP API; the ``data`` of a successful answer."""
    url = f"http://127.0.0.1:{server.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "success", (path, params, body)
        data = body["data"]
        evaluated = (
            all(
                rule["health"] != "unknown"
                for group in data.get("groups", [])
                for rule in group["rules"]
            )
            if wait_for_rules
            else True
        )
        if evaluated or time.monotonic() > deadline:
            return data
        time.sleep(0.5)


def _poll(server: Server, query: str, want: int, timeout: float = 60) -> float:
    """The value of an instant ``query`` once every target has been scraped ``want`` times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = _api(server, "query", query=f"count_over_time(({query})[1m:1s])")["result"]
        if result and float(result[0]["value"][1]) >= 3:
            value = _api(server, "query", query=query)["result"]
            if value:
                return float(value[0]["value"][1])
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never answered {query} within {timeout}s")


def _post_feedback(port: int, body: bytes, secret: str = FEEDBACK_SECRET) -> tuple[int, Any]:
    timestamp, key = str(int(time.time())), f"fb-{uuid.uuid4().hex}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/feedback",
        data=body,
        method="POST",
        headers={
            "Idempotency-Key": key,
            "X-Rapport-Timestamp": timestamp,
            "X-Rapport-Signature": signature(secret.encode(), timestamp, key, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.integration
def test_signed_delivery_feedback_reaches_the_profile_and_anything_else_is_refused(
    two_workers: TwoWorkers,
) -> None:
    ports = two_workers.ports
    # the last customer: the lookup test above compares the first twelve to the replay
    key = sorted(k for k in two_workers.want.profiles if not k.startswith("anon:"))[-1]
    stored = msgspec.json.decode(two_workers.want.profiles[key])
    when = datetime.fromtimestamp(stored["as_of"], UTC).isoformat()

    def line(kind: str, **properties: Any) -> bytes:
        record = {
            "type": kind,
            "event_id": f"fb-{uuid.uuid4().hex}",
            "customer_id": key,
            "occurred_at": when,
            "properties": {"channel": "email", "action_id": "a1", **properties},
        }
        return json.dumps(record).encode()

    body = line("message.delivered") + b"\n" + line("message.complained") + b"\n"
    assert _post_feedback(ports[0], body, secret="wrong-" + FEEDBACK_SECRET)[0] == 401
    status, answer = _post_feedback(ports[0], body.replace(b"message.complained", b"order.placed"))
    assert status == 400
    assert "line 2" in answer["problems"][0]
    assert _post_feedback(ports[1], body) == (202, {"accepted": 2})
    deadline = time.monotonic() + 60
    reach: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, found = _get(ports[0], f"/profiles/{key}?view=full")
        reach = found.get("profile", {}).get("reach", {}).get("email", {}) if status == 200 else {}
        if reach.get("complaints") == 1:
            break
        time.sleep(0.3)
    assert reach.get("delivered") == 1, reach
    assert reach.get("complaints") == 1, reach
    assert reach.get("unreachable_reason") == "complaint", reach


@pytest.mark.integration
def test_the_inbox_is_served_to_the_client_and_marked_read(two_workers: TwoWorkers) -> None:
    port = two_workers.ports[0]
    now = time.time()

    async def fill() -> None:
        redis = RedisIO(
            RedisSettings(url=f"redis://{two_workers.redis}/0", key_prefix=two_workers.prefix)
        )
        inbox = Inbox(redis, InboxAdapter())
        for n, title in enumerate(("欢迎", "Your gold benefits")):
            message = InboxMessage(
                id=f"m{n}", at=now + n, expires_at=now + 3600, locale="zh-CN", title=title
            )
            await inbox.put("inbox-customer", message, now)
        await redis.close()

    asyncio.run(fill())
    assert _get(port, "/inbox/inbox-customer", token=None)[0] == 401
    status, body = _get(port, "/inbox/inbox-customer")
    assert status == 200, body
    assert [m["title"] for m in body["messages"]] == ["Your gold benefits", "欢迎"]
    assert body["unread"] == 2
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/inbox/inbox-customer/m0/read",
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200
    status, body = _get(port, "/inbox/inbox-customer")
    assert [m["read"] for m in body["messages"]] == [False, True]
    assert body["unread"] == 1


@pytest.mark.integration
def test_the_signed_unsubscribe_link_confirms_then_withdraws_consent(
    two_workers: TwoWorkers,
) -> None:
    port = two_workers.ports[1]
    key = sorted(k for k in two_workers.want.profiles if not k.startswith("anon:"))[-2]
    link = UnsubscribeLinks(DEVELOPMENT_KEY).link(f"http://127.0.0.1:{port}", key, "email")
    with urllib.request.urlopen(link, timeout=10) as reply:  # GET: a page, nothing changes
        page = reply.read().decode()
    assert '<form method="post">' in page
    forged = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(forged, data=b"", method="POST"), timeout=10)
    assert refused.value.code == 400
    one_click = urllib.request.Request(link, data=b"List-Unsubscribe=One-Click", method="POST")
    with urllib.request.urlopen(one_click, timeout=10) as reply:
        assert "not receive email" in reply.read().decode()

    # On the events topic, keyed by the customer, for the engine to apply in event time
    # (this module's workers run on event time: the profile changes when later events come).
    def unsubscribed(records: list[Any]) -> bool:
        return any(b"message.unsubscribed" in r.value for r in records)

    records = read_topic(two_workers.broker, f"{two_workers.prefix}events", unsubscribed)
    (record,) = [r for r in records if b"message.unsubscribed" in r.value]
    assert record.key == key.encode()
    event = json.loads(record.value)
    assert event["customer_id"] == key
    assert event["properties"] == {"channel": "email"}
