"""The worker's side of the churn model, without Kafka: learn, publish, adopt, restore."""

from __future__ import annotations

import random

import msgspec

from churn.features import FEATURES
from churn.model import ChurnLearner
from churn.tracker import ChurnLabel
from streams.churn_io import ChurnIO, ModelRecord, bootstrap_servers

_ENCODER = msgspec.json.Encoder()


def _labels(count: int, seed: int = 4) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        values = [round(rng.uniform(0, 3), 4) for _ in FEATURES]
        label = ChurnLabel(
            label_id=f"l{n}",
            profile_key=f"c{n % 7}",
            snapshot_at=float(n),
            kind="order",
            values=values,
            churned=values[0] > 1.5,
            score=None,
            version=0,
            at=float(n) + 10,
        )
        out.append(_ENCODER.encode(label))
    return out


def _io() -> ChurnIO:
    return ChurnIO(lambda: ChurnLearner(min_labels=3))


def test_a_published_model_scores_on_every_worker_that_reads_it() -> None:
    learner_side, other = _io(), _io()
    for offset, raw in enumerate(_labels(40)):
        assert learner_side.learn(raw, offset)
    record = learner_side.record()
    assert record is not None
    learner_side.published(record)
    other.adopt(record)
    values = [1.0] * len(FEATURES)
    assert other.scorer().version == 40
    assert other.scorer().score(values) == learner_side.scorer().score(values)
    assert learner_side.record() is None  # nothing learned since


def test_a_new_learner_goes_on_from_the_published_model_and_skips_what_it_learned() -> None:
    labels = _labels(60)
    first = _io()
    for offset, raw in enumerate(labels[:40]):
        first.learn(raw, offset)
    record = first.record()
    assert record is not None
    for offset, raw in enumerate(labels[40:50], start=40):
        first.learn(raw, offset)  # learned, never published: lost with this worker

    second = _io()
    second.adopt(record)
    learned = [second.learn(raw, offset) for offset, raw in enumerate(labels)]
    assert learned == [False] * 40 + [True] * 20  # read again from the committed offset
    assert second.learner is not None
    assert second.learner.version == 60


def test_after_its_labels_are_revoked_a_worker_restores_from_the_newest_model() -> None:
    io = _io()
    for offset, raw in enumerate(_labels(30)):
        io.learn(raw, offset)
    record = io.record()
    assert record is not None
    io.published(record)
    io.release()
    assert io.learner is None
    assert not io.learn(_labels(1)[0], 29)  # the restored learner learned offset 29
    assert io.learner is not None
    assert io.learner.version == 30


def test_a_model_for_other_features_or_garbage_is_ignored() -> None:
    io = _io()
    foreign = ModelRecord(1, True, 0.0, [1.0], ["other"], 0, b"")
    io.adopt(msgspec.msgpack.encode(foreign))
    io.adopt(b"\x00not msgpack")
    assert io.latest is None
    assert not io.scorer().ready


def test_faust_broker_urls_become_bootstrap_servers() -> None:
    assert bootstrap_servers("kafka://h1:9092;kafka://h2:9093") == "h1:9092,h2:9093"
    assert bootstrap_servers("kafka://127.0.0.1:9092") == "127.0.0.1:9092"


def test_the_model_and_its_health_are_metrics_on_the_learners_worker() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from streams.metrics import FunctionCollector, churn_metrics

    io = _io()
    for offset, raw in enumerate(_labels(40)):
        io.learn(raw, offset)
    record = io.record()
    assert record is not None
    io.published(record)

    registry = CollectorRegistry()
    registry.register(FunctionCollector(lambda: churn_metrics(io.scorer(), io.learner)))
    text = generate_latest(registry).decode()
    assert "rapport_churn_model_version 40.0" in text
    assert "rapport_churn_model_ready 1.0" in text
    assert "rapport_churn_labels_total 40.0" in text
    assert "rapport_churn_drifts_total 0.0" in text
