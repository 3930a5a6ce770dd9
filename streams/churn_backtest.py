"""``rapport churn evaluate``: the online model judged prequentially on a replayed stream,
next to a batch model trained once on the first part of the same snapshots.

**Prequential.** The stream runs through the engine in event time. Each snapshot is
scored by the model as it stands when the snapshot is taken; its label comes out at its
horizon, is judged against that score, and only then learned. Scores given before the
model is ready (``min_labels`` of each kind learned) are not judged: the engine gives no
risk then either. Nothing the model learns is from after the moment it scores.

**Batch baseline.** Gradient boosting (scikit-learn's ``HistGradientBoostingClassifier``,
a test and benchmark dependency) on the same feature values. It trains on the labelled
snapshots whose horizon ended by the split time (the first ``split`` of the stream's
time span), and is tested on the order snapshots taken after the split whose horizon
ended within the stream, so its labels are complete too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from river import metrics

from churn.model import ChurnLearner
from churn.tracker import ChurnConfig, ChurnLabel, ChurnTracker
from engine import Engine, EngineConfig
from engine.driver import run
from engine.outputs import Dispatch
from rules.loader import RuleSet
from schemas.events import Event
from state.policy import ProfilePolicy
from state.stores.memory import MemoryProfileStore


@dataclass
class Judged:
    """ROC AUC and log loss of one kind of snapshot, over the whole run."""

    auc: metrics.ROCAUC = field(default_factory=metrics.ROCAUC)
    log_loss: metrics.LogLoss = field(default_factory=metrics.LogLoss)
    count: int = 0
    churned: int = 0

    def update(self, churned: bool, score: float) -> None:
        self.auc.update(churned, score)
        self.log_loss.update(churned, score)
        self.count += 1
        self.churned += churned


@dataclass
class Baseline:
    roc_auc: float
    log_loss: float
    trained_on: int
    tested_on: int


@dataclass
class Evaluation:
    events: int = 0
    labels: list[ChurnLabel] = field(default_factory=list)
    #: Judged scores by snapshot kind ("order", "checkin") and over all ("all").
    judged: dict[str, Judged] = field(default_factory=dict)
    unscored: int = 0
    first_at: float = math.inf
    last_at: float = -math.inf
    drifts: int = 0
    model_version: int = 0
    baseline: Baseline | None = None
    baseline_note: str = ""

    def render(self) -> str:
        lines = [f"events {self.events:,}, labels {len(self.labels):,}"]
        churned = sum(label.churned for label in self.labels)
        if self.labels:
            lines[0] += f" ({churned / len(self.labels):.1%} churned)"
        lines.append(
            f"prequential (online model, each score judged at its label, {self.unscored:,} "
            "given before the model was ready not judged):"
        )
        for kind in ("order", "checkin", "all"):
            judged = self.judged.get(kind)
            if judged is None or not judged.count:
                continue
            lines.append(
                f"  {kind:<8} ROC AUC {judged.auc.get():.4f}  log loss {judged.log_loss.get():.4f}"
                f"  ({judged.count:,} labels, {judged.churned / judged.count:.1%} churned)"
            )
        lines.append(f"  model version {self.model_version:,}, drifts detected {self.drifts}")
        if self.baseline is not None:
            b = self.baseline
            lines.append(
                f"batch baseline (gradient boosting, order snapshots, time split): ROC AUC "
                f"{b.roc_auc:.4f}  log loss {b.log_loss:.4f}  (trained on {b.trained_on:,}, "
                f"tested on {b.tested_on:,})"
            )
        elif self.baseline_note:
            lines.append(f"batch baseline: {self.baseline_note}")
        return "\n".join(lines)


def evaluate(
    events: Iterable[Event],
    config: ChurnConfig,
    learner: ChurnLearner | None = None,
    policy: ProfilePolicy | None = None,
    lateness_seconds: float = 3600.0,
) -> Evaluation:
    """Run ``events`` through an engine with churn tracking; learn and judge every label."""
    learner = learner or ChurnLearner()
    engine = Engine(
        MemoryProfileStore(),
        RuleSet.empty(),
        policy,
        EngineConfig(allowed_lateness_seconds=lateness_seconds),
        churn=ChurnTracker(config, learner.scorer),
    )
    result = Evaluation()
    judged = result.judged

    def take(label: ChurnLabel) -> None:
        result.labels.append(label)
        learner.learn(label.values, label.churned, label.score)
        if label.score is None:
            result.unscored += 1
            return
        for kind in (label.kind, "all"):
            judged.setdefault(kind, Judged()).update(label.churned, label.score)

    # The stream's end (``engine/driver.py``): labels whose horizon passed by then come
    # out; later ones cannot.
    driver = run(events, engine, [Dispatch({ChurnLabel: take})])
    result.events = driver.events
    result.first_at = min(result.first_at, driver.first_at)
    result.last_at = engine.newest_event_time
    result.drifts = learner.health.drifts
    result.model_version = learner.version
    return result


def batch_baseline(result: Evaluation, split: float = 0.5) -> Baseline:
    """Gradient boosting trained once on the labels known at the split, tested after it."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss, roc_auc_score

    cut = result.first_at + (result.last_at - result.first_at) * split
    train = [label for label in result.labels if label.at <= cut]
    test = [label for label in result.labels if label.kind == "order" and label.snapshot_at > cut]
    if len({label.churned for label in train}) < 2 or len({label.churned for label in test}) < 2:
        raise ValueError("both outcomes are needed before and after the split")
    model = HistGradientBoostingClassifier(random_state=0)
    model.fit([label.values for label in train], [label.churned for label in train])
    scores = model.predict_proba([label.values for label in test])[:, 1]
    truth = [label.churned for label in test]
    return Baseline(
        roc_auc=float(roc_auc_score(truth, scores)),
        log_loss=float(log_loss(truth, scores)),
        trained_on=len(train),
        tested_on=len(test),
    )
