"""The churn model in the worker: labels to one learner, its model to every scorer.

- Engines put out ``ChurnLabel`` records; the worker publishes them to
  ``<prefix>churn.labels``, which has one partition, so exactly one worker (whoever owns
  it) runs the learner.
- The learner learns each label, and every ``PUBLISH_EVERY`` labels (or on a timer)
  publishes a ``ModelRecord`` to ``<prefix>churn.models`` (compacted, key ``churn``): the
  folded scorer for every worker, and the whole learner (pickled river pipeline and its
  health) with the labels offset it has learned through, so a new owner of the labels
  partition restores it and skips what it already learned.
- Every worker follows the models topic and scores with the newest model it has read.

The labels are acknowledged only once a model that learned them is published: after a
crash the new learner starts from the last published model and reads again exactly the
labels it had not published.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from typing import Any

import msgspec

from churn.features import FEATURES
from churn.model import NOT_READY, ChurnLearner, LinearScorer
from churn.tracker import ChurnLabel
from streams.follow import follow_topic

log = logging.getLogger("rapport.churn")
#: Publish the model after this many labels learned (and on the worker's timer).
PUBLISH_EVERY = 500
MODEL_KEY = b"churn"


class ModelRecord(msgspec.Struct, frozen=True):
    version: int
    ready: bool
    intercept: float
    weights: list[float]
    #: The feature names the weights are for; a record for other features is not used.
    features: list[str]
    #: The labels-topic offset learned through (-1: none).
    labels_offset: int
    #: The learner itself (river pipeline and health), for the next learner to go on from.
    learner: bytes

    def scorer(self) -> LinearScorer:
        return LinearScorer(self.intercept, tuple(self.weights), self.version, self.ready)


_LABEL = msgspec.json.Decoder(ChurnLabel)
_RECORD = msgspec.msgpack.Decoder(ModelRecord)
_ENCODER = msgspec.msgpack.Encoder()


class ChurnIO:
    """What one worker knows of the model, and the learner if it owns the labels."""

    def __init__(self, make_learner: Any) -> None:
        #: Makes a fresh learner (from the churn settings) when there is nothing to restore.
        self._make_learner = make_learner
        self._scorer: LinearScorer = NOT_READY
        #: The newest record read from the models topic (the learner restores from it).
        self.latest: ModelRecord | None = None
        #: Set once the models topic has been read to its end at start-up.
        self.caught_up = asyncio.Event()
        self.learner: ChurnLearner | None = None
        self.learned_through = -1
        self.published_through = -1
        self.lock = asyncio.Lock()
        #: Labels learned and not yet acknowledged: (stream, event), acked once published.
        self.held: list[tuple[Any, Any]] = []

    def release(self) -> None:
        """The labels partition went to another worker: it restores the learner from the
        newest model; the labels held here are read again there."""
        self.learner = None
        self.learned_through = self.published_through = -1
        self.held = []

    def scorer(self) -> LinearScorer:
        """The newest model this worker has (what its engines score with)."""
        return self._scorer

    def adopt(self, raw: bytes) -> None:
        """A record read from the models topic."""
        try:
            record = _RECORD.decode(raw)
        except msgspec.DecodeError as error:
            log.error("churn model record unreadable, ignored: %s", error)
            return
        if record.features != list(FEATURES):
            log.error("churn model record for other features (%d), ignored", len(record.features))
            return
        if self.latest is None or record.version >= self.latest.version:
            self.latest = record
            self._scorer = record.scorer()

    def learn(self, raw: bytes, offset: int) -> bool:
        """Learn one label read at ``offset``; False if it was learned before (skipped)."""
        learner = self._learner()
        if offset <= self.learned_through:
            return False
        label = _LABEL.decode(raw)
        if learner.learn(label.values, label.churned, label.score):
            health = learner.health
            log.warning(
                "churn model drift detected (ADWIN): version %d, rolling ROC AUC %.3f",
                learner.version,
                health.roc_auc,
            )
        self.learned_through = offset
        return True

    def record(self) -> bytes | None:
        """The model to publish, if it learned anything since the last one."""
        learner = self.learner
        if learner is None or self.learned_through <= self.published_through:
            return None
        scorer = learner.scorer()
        record = ModelRecord(
            version=scorer.version,
            ready=scorer.ready,
            intercept=scorer.intercept,
            weights=list(scorer.weights),
            features=list(FEATURES),
            labels_offset=self.learned_through,
            learner=pickle.dumps(learner),
        )
        return _ENCODER.encode(record)

    def published(self, raw: bytes) -> None:
        """``raw`` (from ``record``) is on the models topic: use it here too."""
        self.published_through = self.learned_through
        self.adopt(raw)

    def _learner(self) -> ChurnLearner:
        if self.learner is None:
            latest = self.latest
            if latest is not None and latest.learner:
                self.learner = pickle.loads(latest.learner)
                self.learned_through = self.published_through = latest.labels_offset
                log.info(
                    "churn learner restored: version %d, labels through offset %d",
                    latest.version,
                    latest.labels_offset,
                )
            else:
                self.learner = self._make_learner()
                log.info("churn learner started fresh")
        assert self.learner is not None
        return self.learner


def bootstrap_servers(broker: str) -> str:
    """``kafka://h1:9092;kafka://h2:9092`` (Faust's form) as ``h1:9092,h2:9092``."""
    hosts = [part.strip() for part in broker.replace(";", ",").split(",") if part.strip()]
    return ",".join(host.split("://", 1)[-1] for host in hosts)


async def follow_models(broker: str, topic: str, churn: ChurnIO) -> None:
    """Read the models topic from its start, then follow it, handing each record to
    ``churn``; ``churn.caught_up`` is set once the records there at start are read."""

    def caught_up(records: int) -> None:
        churn.caught_up.set()
        log.info("churn models read (%d records): model version %s", records, _version(churn))

    await follow_topic(bootstrap_servers(broker), topic, lambda _, v: churn.adopt(v), caught_up)


def _version(churn: ChurnIO) -> str:
    return "none" if churn.latest is None else str(churn.latest.version)
