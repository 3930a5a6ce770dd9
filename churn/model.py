"""The online churn model (river), its fast scoring snapshot, and its health.

``ChurnLearner`` owns a river pipeline, ``StandardScaler | LogisticRegression`` trained by
AdaGrad (what measured best on the UCI log; docs/churn.md). It learns one label at a time.
Before it learns, it checks the label against the score the snapshot was given when it
was taken: rolling ROC AUC and log loss over the last ``window`` labels, and ADWIN on the
error for drift. That is prequential evaluation with the real delay.

Scoring does not go through river: ``LinearScorer`` folds the scaler into the weights
(``sigmoid(c + sum(a_i * x_i))``), a few microseconds per profile. The learner hands out
a new one (``scorer()``) as often as the caller wants a fresher model; each carries the
version (labels learned) it was made at.

>>> learner = ChurnLearner(min_labels=1)
>>> learner.scorer().score([0.0] * len(FEATURES)) is None  # nothing learned yet
True
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from river import drift, linear_model, metrics, optim, preprocessing, utils

from churn.features import FEATURES, named


@dataclass(frozen=True)
class LinearScorer:
    """A logistic model with its scaler folded in: ``sigmoid(intercept + weights . x)``."""

    intercept: float
    weights: tuple[float, ...]
    #: Labels learned by the model this was taken from.
    version: int
    #: False until the model has learned enough labels of both kinds to be trusted.
    ready: bool

    def score(self, values: list[float]) -> float | None:
        """Churn probability for feature values in ``FEATURES`` order; None if not ready."""
        if not self.ready:
            return None
        z = self.intercept
        for weight, x in zip(self.weights, values, strict=True):
            z += weight * x
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


NOT_READY = LinearScorer(0.0, (0.0,) * len(FEATURES), version=0, ready=False)


@dataclass
class ModelHealth:
    """How the model has done on the labels it learned, each judged before learning it."""

    window: int
    auc: Any = None
    log_loss: Any = None
    detector: Any = None
    labels: int = 0
    churned: int = 0
    drifts: int = 0
    #: Labels whose snapshot had no score (no model ready then): not judged.
    unscored: int = 0
    #: The outcomes of the judged labels in the rolling window (churned or not).
    _window_outcomes: deque[bool] = field(default_factory=deque)
    _window_churned: int = 0

    def __post_init__(self) -> None:
        self.auc = metrics.RollingROCAUC(window_size=self.window)
        self.log_loss = utils.Rolling(metrics.LogLoss, window_size=self.window)
        self.detector = drift.ADWIN()

    def judge(self, churned: bool, score: float | None) -> bool:
        """Count one label against the score it was given; True when drift is detected."""
        self.labels += 1
        self.churned += churned
        if score is None:
            self.unscored += 1
            return False
        self.auc.update(churned, score)
        self.log_loss.update(churned, score)
        outcomes = self._window_outcomes
        outcomes.append(churned)
        self._window_churned += churned
        if len(outcomes) > self.window:
            self._window_churned -= outcomes.popleft()
        self.detector.update(abs(float(churned) - score))
        if self.detector.drift_detected:
            self.drifts += 1
            return True
        return False

    @property
    def roc_auc(self) -> float:
        return float(self.auc.get())

    def auc_unknown(self) -> str | None:
        """Why the rolling ROC AUC means nothing now, or None: no label judged yet, or the
        window's labels are all of one kind (an AUC needs both; river then says 0)."""
        judged = len(self._window_outcomes)
        if not judged:
            return "no label of a snapshot scored by a ready model has been judged yet"
        if self._window_churned in (0, judged):
            kind = "churned" if self._window_churned else "retained"
            return f"the last {judged:,} judged labels are all {kind}: an AUC needs both kinds"
        return None

    @property
    def mean_log_loss(self) -> float:
        return float(self.log_loss.get())


@dataclass
class ChurnLearner:
    """Learns from labels in the order they come; hands out scorers of its current state."""

    #: Labels of each kind (churned, retained) to learn before scores are given.
    min_labels: int = 500
    learning_rate: float = 0.1
    window: int = 1000
    health: ModelHealth = field(init=False)
    version: int = field(init=False, default=0)
    _model: Any = field(init=False)
    _seen: list[int] = field(init=False, default_factory=lambda: [0, 0])
    _scorer: LinearScorer = field(init=False, default=NOT_READY)

    def __post_init__(self) -> None:
        self._model = preprocessing.StandardScaler() | linear_model.LogisticRegression(
            optimizer=optim.AdaGrad(self.learning_rate)
        )
        self.health = ModelHealth(self.window)

    @property
    def ready(self) -> bool:
        return min(self._seen) >= self.min_labels

    def labels_needed(self) -> dict[str, int]:
        """Labels of each kind still to learn before the model gives scores."""
        retained, churned = self._seen
        return {
            "churned": max(0, self.min_labels - churned),
            "retained": max(0, self.min_labels - retained),
        }

    def not_ready_reason(self, horizon_days: float | None = None) -> str | None:
        """Why no customer has a risk yet, with the counts it takes; None when ready."""
        if self.ready:
            return None
        retained, churned = self._seen
        reason = (
            f"the churn model is not ready: it has learned {churned:,} churned and "
            f"{retained:,} retained labels and needs {self.min_labels:,} of each "
            "(churn.min_labels)"
        )
        if horizon_days is not None:
            reason += (
                f"; a snapshot is labelled one horizon ({horizon_days:g} days) after it is "
                "taken, so a stream needs to run well past the horizon, with customers who "
                "stop ordering, before churned labels come"
            )
        return reason

    def learn(self, values: list[float], churned: bool, score: float | None) -> bool:
        """Judge the score the snapshot got, then learn its label; True on drift."""
        drifted = self.health.judge(churned, score)
        self._model.learn_one(named(values), churned)
        self._seen[churned] += 1
        self.version += 1
        return drifted

    def scorer(self) -> LinearScorer:
        """The current model as a scorer (made again only when the model has changed)."""
        if self._scorer.version != self.version or self._scorer.ready != self.ready:
            self._scorer = self._fold()
        return self._scorer

    def _fold(self) -> LinearScorer:
        scaler, logistic = self._model["StandardScaler"], self._model["LogisticRegression"]
        intercept = float(logistic.intercept)
        weights_by_name = logistic.weights
        weights = []
        for name in FEATURES:
            weight = float(weights_by_name.get(name, 0.0))
            std = math.sqrt(scaler.vars.get(name, 0.0))
            if std <= 0:  # river scales a constant feature to 0: it adds nothing
                weights.append(0.0)
                continue
            weights.append(weight / std)
            intercept -= weight * scaler.means.get(name, 0.0) / std
        return LinearScorer(intercept, tuple(weights), self.version, self.ready)

    def river_score(self, values: list[float]) -> float:
        """The same probability computed by river itself (tests compare the two)."""
        return float(self._model.predict_proba_one(named(values)).get(True, 0.0))
