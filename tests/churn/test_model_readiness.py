"""A model that cannot score says why, with the counts it needs; an AUC over labels of one
kind is not reported as 0."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from churn.features import FEATURES
from churn.model import ChurnLearner, ModelHealth
from streams.cli import main
from streams.generator import GeneratorConfig, generate_stream


def test_a_model_that_is_not_ready_says_how_many_labels_of_each_kind_it_lacks() -> None:
    learner = ChurnLearner(min_labels=3)
    for _ in range(5):
        learner.learn([0.0] * len(FEATURES), churned=False, score=None)
    assert learner.labels_needed() == {"churned": 3, "retained": 0}
    reason = learner.not_ready_reason(horizon_days=90)
    assert reason is not None
    assert "0 churned and 5 retained" in reason
    assert "needs 3 of each (churn.min_labels)" in reason
    assert "90 days" in reason


def test_an_auc_over_labels_of_one_kind_is_unknown_not_zero() -> None:
    health = ModelHealth(window=10)
    assert health.auc_unknown() is not None  # nothing judged yet
    for score in (0.2, 0.4, 0.6):
        health.judge(churned=False, score=score)
    note = health.auc_unknown()
    assert note == "the last 3 judged labels are all retained: an AUC needs both kinds"
    health.judge(churned=True, score=0.9)
    assert health.auc_unknown() is None
    assert health.roc_auc == 1.0


def test_a_replay_shorter_than_the_horizon_warns_that_the_model_is_not_ready(
    tmp_path: Path,
) -> None:
    stream = tmp_path / "s.jsonl"
    stream.write_bytes(
        b"\n".join(generate_stream(GeneratorConfig(customers=50, days=20, seed=2))) + b"\n"
    )
    result = CliRunner().invoke(
        main, ["replay", str(stream), "--no-progress", "--now", "2026-06-01T00:00:00+00:00"]
    )
    assert result.exit_code == 0, result.output
    assert "WARNING: the churn model is not ready" in result.output
    assert "needs 500 of each (churn.min_labels)" in result.output
    assert "rolling ROC AUC n/a (no label of a snapshot scored by a ready model" in result.output
