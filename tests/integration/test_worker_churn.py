"""The churn model in the worker: labels reach the one learner, its model reaches the scorers."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from churn.model import NOT_READY
from churn.tracker import ChurnLabel, ChurnTracker
from rules.loader import load_rules
from state.profile import Profile
from streams.churn_io import ModelRecord
from streams.generator import GeneratorConfig, generate_stream
from streams.partitions import PartitionEngines
from streams.settings import load_settings
from tests.integration.kafka_io import Record, create_topic, produce, read_topic
from tests.integration.test_worker import PARTITIONS, _changelog, _latest, _profiles_in
from tests.integration.worker_process import WorkerProcess, worker_env
from tests.servers import Server
from tests.streams.exchange import Exchange

CHURN = {"horizon": "2d", "checkin": "0s", "min_labels": "5"}


@pytest.mark.integration
def test_the_worker_learns_from_labels_and_scores_with_the_model_it_published(
    broker: Server, redis: Server, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topic(broker.address, f"{prefix}events", PARTITIONS)
    env = worker_env(
        broker.address,
        redis.address,
        prefix,
        PARTITIONS,
        worker__clock="events",
        churn__horizon=CHURN["horizon"],
        churn__checkin=CHURN["checkin"],
        churn__min_labels=CHURN["min_labels"],
    )
    worker = WorkerProcess(tmp_path, env)
    try:
        deadline = time.monotonic() + 60
        while "[^Worker]: Ready" not in worker.log() and time.monotonic() < deadline:
            assert not worker.exited, worker.log()[-3000:]
            time.sleep(0.2)
        config = GeneratorConfig(customers=60, days=30, seed=12, anonymous_share=0.0)
        produced = produce(broker.address, f"{prefix}events", generate_stream(config), 1500)
        events = read_topic(broker.address, f"{prefix}events", until=lambda r: len(r) == produced)
        want = _want(events)
        assert len(want) > 50, "the stream must give labels"
        labels = read_topic(
            broker.address,
            f"{prefix}churn.labels",
            until=lambda r: len(r) >= len(want) or worker.exited,
            timeout=120,
        )
        decoder = msgspec.json.Decoder(ChurnLabel)
        got = {
            (label.label_id, label.churned)
            for label in map(decoder.decode, (r.value for r in labels))
        }
        models = read_topic(
            broker.address,
            f"{prefix}churn.models",
            until=lambda r: any(_record(x.value).labels_offset >= len(labels) - 1 for x in r),
            timeout=60,
        )
    finally:
        worker.stop()
    assert got == want, worker.log()[-3000:]
    newest = max((_record(r.value) for r in models), key=lambda m: m.version)
    assert newest.ready
    assert newest.version == len(labels)  # every label learned once
    profiles = [
        msgspec.json.decode(value, type=Profile)
        for value in _profiles_in(_latest(_changelog(broker.address, prefix.rstrip(".")))).values()
    ]
    scored = [p for p in profiles if p.churn.risk is not None]
    assert scored, "no profile was scored with the published model"


def _record(raw: bytes) -> ModelRecord:
    return msgspec.msgpack.decode(raw, type=ModelRecord)


def _want(events: list[Record]) -> set[tuple[str, bool]]:
    """(label id, churned) of every label the partitioned engines give for ``events``: what
    a label is does not depend on the model, only its score does."""
    settings = load_settings(churn=CHURN)
    engines = PartitionEngines(
        load_rules(settings.rules_dir),
        settings.profile,
        settings.engine.engine_config(),
        coupon_shares=PARTITIONS,
        partitions=PARTITIONS,
        churn=ChurnTracker(settings.churn.config(), lambda: NOT_READY),
    )
    exchange = Exchange(engines)
    sizes = Counter(r.partition for r in events)
    for record in sorted(events, key=lambda r: ((r.offset + 1) / sizes[r.partition], r.partition)):
        exchange.feed_raw(record.partition, record.value)
    exchange.settle()
    return {
        (item.label_id, item.churned) for item in exchange.outputs if isinstance(item, ChurnLabel)
    }
