"""The learner: a folded scorer that equals river's own probability, readiness, health."""

from __future__ import annotations

import random

import pytest

from churn.features import FEATURES
from churn.model import ChurnLearner
from churn.tracker import ChurnConfig


def _taught(labels: int, min_labels: int = 10) -> tuple[ChurnLearner, random.Random]:
    rng = random.Random(11)
    learner = ChurnLearner(min_labels=min_labels)
    for _ in range(labels):
        values = [rng.uniform(0, 3) for _ in FEATURES]
        values[FEATURES.index("open_carts")] = 0.0  # a feature that never varies
        learner.learn(values, values[0] + rng.gauss(0, 0.5) > 2.0, None)
    return learner, rng


def test_the_folded_scorer_gives_rivers_probability() -> None:
    learner, rng = _taught(500)
    scorer = learner.scorer()
    for _ in range(20):
        values = [rng.uniform(0, 3) for _ in FEATURES]
        score = scorer.score(values)
        assert score is not None
        assert score == pytest.approx(learner.river_score(values), abs=1e-9)


def test_no_scores_until_both_kinds_of_label_have_been_learned_enough() -> None:
    learner = ChurnLearner(min_labels=3)
    values = [1.0] * len(FEATURES)
    for _ in range(10):
        learner.learn(values, False, None)
    assert learner.scorer().score(values) is None  # only retained labels so far
    for _ in range(3):
        learner.learn(values, True, None)
    assert learner.scorer().score(values) is not None
    assert learner.scorer().version == 13


def test_health_judges_the_score_a_snapshot_was_given_before_learning_it() -> None:
    learner = ChurnLearner(min_labels=1)
    values = [0.0] * len(FEATURES)
    learner.learn(values, True, 0.9)
    learner.learn(values, False, 0.1)
    learner.learn(values, False, None)
    health = learner.health
    assert (health.labels, health.churned, health.unscored) == (3, 1, 1)
    assert health.roc_auc == 1.0


def test_a_learned_model_ranks_churners_above_the_others() -> None:
    learner, _ = _taught(2000)
    scorer = learner.scorer()
    low = [0.2] + [1.5] * (len(FEATURES) - 1)
    high = [2.8] + [1.5] * (len(FEATURES) - 1)
    assert (scorer.score(high) or 0) > (scorer.score(low) or 1)


def test_thresholds_in_the_wrong_order_are_refused_with_both_values() -> None:
    with pytest.raises(ValueError, match=r"0\.8, 0\.6"):
        ChurnConfig(low=0.8, high=0.6)


def test_a_model_that_suddenly_errs_is_reported_as_drifting() -> None:
    learner = ChurnLearner(min_labels=1)
    values = [0.0] * len(FEATURES)
    rng = random.Random(2)
    for n in range(3000):
        churned = rng.random() < 0.3
        right = 0.9 if churned else 0.1
        learner.learn(values, churned, right if n < 1500 else 1 - right)
    assert learner.health.drifts >= 1
    assert learner.health.roc_auc < 0.5  # the last 1,000 scores were upside down
