"""Faults on a running worker: the broker restarts, a broken rule file is pushed, poison
records arrive. Each test checks that no event is lost and no action goes out twice, and
records its figures (``tests/integration/figures.py``, docs/reliability.md).

Redis stopped mid-stream is ``test_redis_outage.py``; a worker killed mid-stream and
mid-delivery is ``test_worker.py`` (``killed_run``)."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from rules.loader import DEFAULT_RULES_DIR
from streams.generator import GeneratorConfig, generate_stream
from tests.integration.figures import action_ids, duplicated, record_run
from tests.integration.kafka_io import Record, create_topic, produce, read_topic
from tests.integration.test_worker import (
    PARTITIONS,
    Oracle,
    _await_actions,
    _caught_up,
    _differences,
    _sent_ids,
    _stored_profiles,
    _wait_delivered,
)
from tests.integration.worker_process import WorkerProcess, worker_env
from tests.servers import Server, kafka_broker, s3_server

pytestmark = pytest.mark.integration

DOWN_SECONDS = 5


def _stream(seed: int, customers: int = 150) -> list[bytes]:
    config = GeneratorConfig(customers=customers, days=30, seed=seed, anonymous_share=0.0)
    return list(generate_stream(config))


def _check_and_record(
    scenario: str,
    broker: Server,
    prefix: str,
    want: Oracle,
    actions: list[Record],
    delivered: Counter[str],
    recovery: float,
    log: str,
    **extra: float | int | str,
) -> None:
    """Nothing lost, nothing twice, the profiles replay computes; then the figures."""
    ids = action_ids(r.value for r in actions)
    stored = _stored_profiles(broker.address, prefix.rstrip("."))
    record_run(scenario, want.profiles, stored, ids, delivered, recovery, **extra)
    missing = set(want.actions) - {r.value for r in actions}
    assert not missing, f"{len(missing)} actions missing\n{log[-3000:]}"
    assert {r.value for r in actions} == set(want.actions)
    assert duplicated(ids) == 0, "an action id was published twice"
    assert _differences(stored, want.profiles) == []
    assert duplicated(delivered) == 0, "an action was delivered twice"
    assert _sent_ids(want.actions) <= set(delivered)


def test_a_broker_restart_mid_stream_loses_nothing_and_sends_nothing_twice(
    redis: Server, tmp_path: Path
) -> None:
    """The broker (its storage kept, as Kafka keeps its log on disk) is stopped for five
    seconds while the worker works through a backlog, then started again."""
    lines = _stream(seed=11)
    half = len(lines) // 2
    with (
        s3_server(tmp_path / "s3") as storage,
        kafka_broker(tmp_path / "broker", storage=storage) as first,
    ):
        port = first.port
        prefix = f"faults.broker.{time.monotonic_ns()}."
        create_topic(first.address, f"{prefix}events", PARTITIONS)
        produce(first.address, f"{prefix}events", lines[:half])
        env = worker_env(first.address, redis.address, prefix, PARTITIONS, worker__clock="events")
        worker = WorkerProcess(tmp_path, env)
        try:
            _await_actions(first, prefix, 20, worker)
            first.process.terminate()
            first.process.wait(10)
            time.sleep(DOWN_SECONDS)
            with kafka_broker(tmp_path / "broker", port=port, storage=storage) as again:
                back = time.monotonic()
                produce(again.address, f"{prefix}events", lines[half:])
                want, actions, caught_up = _caught_up(again, prefix, len(lines), worker)
                delivered = _wait_delivered(tmp_path / "build" / "deliveries.jsonl", want)
                assert not worker.exited, worker.log()[-3000:]
                _check_and_record(
                    "broker restart (5 s down)",
                    again,
                    prefix,
                    want,
                    actions,
                    delivered,
                    caught_up - back,
                    worker.log(),
                )
        finally:
            worker.stop()


def test_a_broken_rule_file_pushed_mid_run_is_refused_and_the_last_good_rules_stay(
    broker: Server, redis: Server, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules)
    lines = _stream(seed=12)
    half = len(lines) // 2
    prefix = f"faults.rules.{time.monotonic_ns()}."
    create_topic(broker.address, f"{prefix}events", PARTITIONS)
    produce(broker.address, f"{prefix}events", lines[:half])
    env = worker_env(
        broker.address,
        redis.address,
        prefix,
        PARTITIONS,
        worker__clock="events",
        rules_dir=str(rules),
    )
    worker = WorkerProcess(tmp_path, env)
    try:
        _await_actions(broker, prefix, 20, worker)
        broken = rules / "journeys" / "cart_recovery.yaml"
        broken.write_text(broken.read_text().replace("wait: 1h", "wait: soon"))
        pushed = time.monotonic()
        while "rules change rejected" not in worker.log() and time.monotonic() - pushed < 30:
            time.sleep(0.2)
        refused = time.monotonic() - pushed
        produce(broker.address, f"{prefix}events", lines[half:])
        want, actions, _ = _caught_up(broker, prefix, len(lines), worker)
        delivered = _wait_delivered(tmp_path / "build" / "deliveries.jsonl", want)
    finally:
        worker.stop()
    log = worker.log()
    assert "rules change rejected" in log
    assert "cart_recovery.yaml:" in log  # the file and line of the problem
    _check_and_record(
        "malformed rule file pushed",
        broker,
        prefix,
        want,
        actions,
        delivered,
        0.0,
        log,
        refused_after_seconds=round(refused, 1),
    )


_POISON_ORDER = (
    b'{"type":"order.placed","event_id":"p1","customer_id":"c1","occurred_at":'
    b'"2026-03-02T10:00:00Z","properties":{"order_id":"p1","total":20,"currency":"GBP",'
    b'"items":[{"product_id":"x","quantity":1,"price":20}]}}'
)
POISON = [
    b"\x00\xff\xfe not json at all",
    b'{"type": "order.placed"',  # cut short
    b"[" * 20_000 + b"]" * 20_000,  # nested deeper than any parser should follow
    b'{"type":"order.placed","event_id":"p1","customer_id":"c1","occurred_at":"2026-03-02T10:00:00Z","properties":{"order_id":"o1","total":"a lot"}}',
    b'{"type":"no.such_type","event_id":"p2","customer_id":"c1","occurred_at":"2026-03-02T10:00:00Z"}',
    b'{"type":"product.viewed","event_id":"p3","customer_id":"c1","occurred_at":"2999-01-01T00:00:00Z","properties":{"product_id":"x"}}',
    b'{"type":"product.viewed","event_id":"p4","customer_id":"' + b"x" * 200_000 + b'"}',
    # Past the first check on the shape (issue 17): bad bytes inside a value, deep nesting
    # in a property Rapport does not read, amounts past any till, parts of a record wrong.
    _POISON_ORDER.replace(b'"c1"', b'"c\xff1"'),
    _POISON_ORDER[:-2] + b',"x":' + b"[" * 1000 + b"]" * 1000 + b"}}",
    _POISON_ORDER.replace(b'"total":20', b'"total":1e20'),
    _POISON_ORDER.replace(b'"price":20', b'"price":1e308'),
    _POISON_ORDER.replace(b'"quantity":1', b'"quantity":-1').replace(b'"p1"', b'"p5"'),
    _POISON_ORDER.replace(b'"GBP"', b'"usd"').replace(b'"p1"', b'"p6"'),
    b'{"type":"customer.updated","event_id":"p7","customer_id":"c1","occurred_at":'
    b'"2026-03-02T10:00:00Z","properties":{"email":"nope","country":"de"}}',
    b'{"type":"order.placed","pad":"' + b"x" * 300_000 + b'"}',  # over the limit set below
]
#: A worker with a lower record limit than the default, so a record over it fits a message.
MAX_RECORD_BYTES = 250_000


def test_poison_records_mid_stream_are_dead_lettered_and_the_rest_goes_on(
    broker: Server, redis: Server, tmp_path: Path
) -> None:
    lines = _stream(seed=13)
    half = len(lines) // 2
    prefix = f"faults.poison.{time.monotonic_ns()}."
    create_topic(broker.address, f"{prefix}events", PARTITIONS)
    env = worker_env(
        broker.address,
        redis.address,
        prefix,
        PARTITIONS,
        worker__clock="events",
        engine__max_record_bytes=str(MAX_RECORD_BYTES),
    )
    worker = WorkerProcess(tmp_path, env)
    try:
        worker.wait_ready()
        produce(broker.address, f"{prefix}events", lines[:half] + POISON + lines[half:])
        total = len(lines) + len(POISON)
        started = time.monotonic()
        want, actions, caught_up = _caught_up(
            broker, prefix, total, worker, max_record_bytes=MAX_RECORD_BYTES
        )
        dead = read_topic(
            broker.address, f"{prefix}events.dlq", until=lambda r: len(r) >= sum(want.dead.values())
        )
        delivered = _wait_delivered(tmp_path / "build" / "deliveries.jsonl", want)
    finally:
        worker.stop()
    assert not worker.exited or worker.process.returncode == 0
    reasons = Counter(r.headers["rapport-reason"].decode() for r in dead)
    assert reasons == want.dead
    assert sum(reasons.values()) >= len(POISON) - 1  # a currency "usd" is normalised
    assert all(r.headers.get("rapport-detail") for r in dead)
    for reason in ("too_deep", "too_large", "partial", "invalid_json"):
        assert reasons[reason] >= 1, reason
    (large,) = [r for r in dead if r.headers["rapport-reason"] == b"too_large"]
    assert len(large.value) <= 4096  # a bounded prefix, not a copy
    assert int(large.headers["rapport-size"]) > MAX_RECORD_BYTES
    _check_and_record(
        "poison records mid-stream",
        broker,
        prefix,
        want,
        actions,
        delivered,
        0.0,  # nothing stopped: the poison went to the dead letters on the way
        worker.log(),
        dead_lettered=sum(reasons.values()),
        caught_up_seconds=round(caught_up - started, 1),
    )
