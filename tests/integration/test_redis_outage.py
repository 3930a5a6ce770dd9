"""Redis stopped for ten seconds mid-stream: the worker holds its actions and catches up."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from streams.generator import GeneratorConfig, generate_stream
from tests.integration.figures import action_ids, duplicated, record_run
from tests.integration.kafka_io import create_topic, produce, read_topic
from tests.integration.test_worker import (
    PARTITIONS,
    _await_actions,
    _caught_up,
    _differences,
    _projected,
    _read_model,
    _stored_profiles,
    _wait_delivered,
)
from tests.integration.worker_process import WorkerProcess, worker_env
from tests.servers import Server, redis_server

OUTAGE_SECONDS = 10


@pytest.mark.integration
def test_redis_down_for_ten_seconds_loses_nothing_and_sends_nothing_twice(
    broker: Server, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topic(broker.address, f"{prefix}events", PARTITIONS)
    lines = list(
        generate_stream(GeneratorConfig(customers=150, days=30, seed=10, anonymous_share=0.0))
    )
    half = len(lines) // 2
    produce(broker.address, f"{prefix}events", lines[:half])
    redis_dir = tmp_path / "redis"
    with redis_server(redis_dir, durable=True) as before:
        env = worker_env(broker.address, before.address, prefix, PARTITIONS, worker__clock="events")
        worker = WorkerProcess(tmp_path, env)
        try:
            _await_actions(broker, prefix, 20, worker)
            before.process.terminate()  # a clean stop: the claims are in the append-only file
            before.process.wait(10)
            stopped = time.monotonic()
            produce(broker.address, f"{prefix}events", lines[half:])
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
            assert not worker.exited, worker.log()[-3000:]
            during = len(read_topic(broker.address, f"{prefix}actions", until=lambda r: True))
            with redis_server(redis_dir, port=before.port, durable=True) as after:
                back = time.monotonic()
                want, records, caught_up = _caught_up(broker, prefix, len(lines), worker)
                read_model = _read_model(after, prefix)
                delivered = _wait_delivered(tmp_path / "build" / "deliveries.jsonl", want)
        finally:
            worker.stop()
    log = worker.log()
    assert "redis unreachable" in log
    assert "redis reachable again" in log
    assert during < len(records), "actions were held while Redis was down, then published"
    ids = action_ids(r.value for r in records)
    assert [i for i, n in ids.items() if n > 1] == [], "an action id was published twice"
    assert {r.value for r in records} == set(want.actions)
    stored = _stored_profiles(broker.address, prefix.rstrip("."))
    scenario = f"Redis down {OUTAGE_SECONDS} s mid-stream"
    record_run(scenario, want.profiles, stored, ids, delivered, caught_up - back)
    assert duplicated(delivered) == 0
    assert _differences(stored, want.profiles) == []
    projected = _projected(want.profiles)
    stale = {
        key: {
            f: (v, projected.get(key, {}).get(f))
            for f, v in fields.items()
            if projected.get(key, {}).get(f) != v
        }
        for key, fields in read_model.items()
        if fields != projected.get(key)
    }
    assert read_model == projected, str(stale)[:3000]
