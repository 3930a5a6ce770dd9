"""The churn model in the worker: labels reach the one learner, its model reaches the scorers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import orjson
import pytest

from churn.tracker import ChurnLabel
from state.profile import Profile
from streams.churn_io import ModelRecord
from streams.generator import GeneratorConfig, generate_stream
from streams.settings import load_settings
from tests.integration.kafka_io import Record, create_topic, produce, read_topic
from tests.integration.test_worker import (
    PARTITIONS,
    _changelog,
    _latest,
    _profiles_in,
    partitioned,
)
from tests.integration.worker_process import WorkerProcess, worker_env
from tests.servers import Server

#: A short horizon gives labels within the stream; a daily refresh scores profiles soon
#: after a ready model reaches the worker, whenever that is.
CHURN = {"horizon": "2d", "checkin": "0s", "min_labels": "5", "refresh": "1d"}


@pytest.mark.integration
def test_the_worker_learns_from_labels_scores_with_its_model_and_restores_it_after_a_restart(
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
        churn__refresh=CHURN["refresh"],
    )
    config = GeneratorConfig(customers=60, days=30, seed=12, anonymous_share=0.0)
    lines = list(generate_stream(config))
    half = len(lines) // 2
    first = WorkerProcess(tmp_path, env, name="first")
    try:
        first.wait_ready()
        produce(broker.address, f"{prefix}events", lines[:half], 1500)
        labels = _labels_learned(broker, prefix, half, first)
    finally:
        first.stop()  # its learner's model is on the models topic
    assert len(labels) > 20, "the first half must give labels"
    second = WorkerProcess(tmp_path, env, name="second")
    try:
        second.wait_ready()
        produce(broker.address, f"{prefix}events", lines[half:], 1500)
        produced = len(lines)
        labels = _labels_learned(broker, prefix, produced, second)
        # A model reaches the scorers when it does (wall clock); the stream may be over by
        # then. Orders a day apart go on until a profile is scored with it.
        for day in range(1, 11):
            produced += produce(broker.address, f"{prefix}events", _orders_after(lines, day))
            labels = _labels_learned(broker, prefix, produced, second)
            if any(p.churn.risk is not None for p in _stored_profiles(broker, prefix)):
                break
        models = read_topic(broker.address, f"{prefix}churn.models", until=lambda r: True)
    finally:
        second.stop()
    assert "churn learner restored" in second.log(), second.log()[-3000:]
    events = read_topic(broker.address, f"{prefix}events", until=lambda r: len(r) == produced)
    want = _want(events)
    decoder = msgspec.json.Decoder(ChurnLabel)
    got = {(label.label_id, label.churned) for label in map(decoder.decode, labels)}
    assert got == want
    assert len(labels) == len(want)  # no label published twice
    newest = max((_record(r.value) for r in models), key=lambda m: m.version)
    assert newest.ready
    assert newest.version == len(labels)  # every label learned once, across the restart
    profiles = _stored_profiles(broker, prefix)
    assert any(p.churn.risk is not None for p in profiles), "nobody was scored with the model"


def _stored_profiles(broker: Server, prefix: str) -> list[Profile]:
    table = _profiles_in(_latest(_changelog(broker.address, prefix.rstrip("."))))
    return [msgspec.json.decode(value, type=Profile) for value in table.values()]


def _orders_after(lines: list[bytes], day: int) -> list[bytes]:
    """An order of each of five customers of the stream, ``day`` days after its end."""
    records = [orjson.loads(line) for line in lines]
    end = max(datetime.fromisoformat(r["occurred_at"]) for r in records)
    buyers = sorted({r["customer_id"] for r in records if r["type"] == "order.placed"})[:5]
    when = (end + timedelta(days=day)).isoformat()
    return [
        orjson.dumps(
            {
                "type": "order.placed",
                "event_id": f"tail-{day}-{customer}",
                "customer_id": customer,
                "occurred_at": when,
                "properties": {"order_id": f"tail-{day}-{customer}", "total": 25.0},
            }
        )
        for customer in buyers
    ]


def _labels_learned(
    broker: Server, prefix: str, produced: int, worker: WorkerProcess
) -> list[bytes]:
    """The labels the engines give for the first ``produced`` events, once a published
    model has learned all of them (or the worker died, or time ran out)."""
    events = read_topic(broker.address, f"{prefix}events", until=lambda r: len(r) == produced)
    count = len(_want(events))
    labels = read_topic(
        broker.address,
        f"{prefix}churn.labels",
        until=lambda r: len(r) >= count or worker.exited,
        timeout=120,
    )
    read_topic(
        broker.address,
        f"{prefix}churn.models",
        until=lambda r: (
            any(_record(x.value).labels_offset >= len(labels) - 1 for x in r) or worker.exited
        ),
        timeout=60,
        settle=0,
    )
    return [record.value for record in labels]


def _record(raw: bytes) -> ModelRecord:
    return msgspec.msgpack.decode(raw, type=ModelRecord)


def _want(events: list[Record]) -> set[tuple[str, bool]]:
    """(label id, churned) of every label the partitioned engines give for ``events``: what
    a label is does not depend on the model, only its score does."""
    exchange = partitioned(events, PARTITIONS, load_settings(churn=CHURN))
    return {
        (item.label_id, item.churned) for item in exchange.outputs if isinstance(item, ChurnLabel)
    }
