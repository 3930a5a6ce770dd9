"""The worker on a real broker gives exactly what the engines give on the same partitions."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from rules.engine import Output
from rules.loader import load_rules
from state.changes import ProfileChange
from streams.generator import GeneratorConfig, generate_stream
from streams.partitions import PartitionEngines
from streams.settings import load_settings
from tests.integration.kafka_io import Record, create_topic, produce, read_topic
from tests.integration.worker_process import WorkerProcess, worker_env
from tests.servers import Server

PARTITIONS = 4
_ENCODER = msgspec.json.Encoder()


def _oracle(events: list[Record]) -> tuple[Counter[bytes], Counter[bytes], Counter[str]]:
    """Replay each partition's records, in offset order, through the same engines."""
    settings = load_settings()
    engines = PartitionEngines(
        load_rules(settings.rules_dir),
        settings.profile,
        settings.engine.engine_config(),
        settings.engine.max_clock_skew_seconds,
    )
    actions, changes, dead = Counter[bytes](), Counter[bytes](), Counter[str]()
    now = time.time()
    for record in sorted(events, key=lambda r: (r.partition, r.offset)):
        handled = engines.handle(record.partition, record.value, "oracle", now)
        if handled.dead_letter is not None:
            dead[handled.dead_letter.reason] += 1
        outputs: list[Output] = handled.outputs
        for item in outputs:
            target = changes if isinstance(item, ProfileChange) else actions
            target[_ENCODER.encode(item)] += 1
    return actions, changes, dead


@pytest.mark.integration
def test_worker_output_equals_replay_of_the_same_partitions(broker: Server, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topic(broker.address, f"{prefix}events", PARTITIONS)
    config = GeneratorConfig(customers=80, days=21, seed=7, malformed=0.02, anonymous_share=0.0)
    produced = produce(broker.address, f"{prefix}events", generate_stream(config))
    events = read_topic(broker.address, f"{prefix}events", until=lambda r: len(r) == produced)
    assert len(events) == produced
    want_actions, want_changes, want_dead = _oracle(events)
    assert sum(want_actions.values()) > 50, "the stream must exercise the journeys"

    env = worker_env(broker.address, prefix, PARTITIONS, worker__clock="events")
    worker = WorkerProcess(tmp_path, env)
    try:
        actions = read_topic(
            broker.address,
            f"{prefix}actions",
            until=lambda r: len(r) >= sum(want_actions.values()) or worker.exited,
            timeout=120,
        )
        changes = read_topic(
            broker.address, f"{prefix}changes", until=lambda r: len(r) >= sum(want_changes.values())
        )
        dead = read_topic(
            broker.address, f"{prefix}events.dlq", until=lambda r: len(r) >= sum(want_dead.values())
        )
    finally:
        worker.stop()
    assert Counter(r.value for r in actions) == want_actions, worker.log()[-3000:]
    assert Counter(r.value for r in changes) == want_changes
    assert Counter(r.headers["rapport-reason"].decode() for r in dead) == want_dead
    assert all(r.key == msgspec.json.decode(r.value)["profile_key"].encode() for r in actions)
