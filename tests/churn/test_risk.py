"""Churn risk on the profile: bands with hysteresis, and a journey started by a high risk."""

from __future__ import annotations

from pathlib import Path

from churn.tracker import ChurnConfig, ChurnTracker
from engine import Engine
from rules.loader import RuleSet, load_rules
from state.changes import ProfileChange
from state.stores import MemoryProfileStore
from tests.builders import IMMEDIATE, at, ordered
from tests.churn.test_labels import NO_CHECKINS, FixedScorer, _engine
from tests.rules.journey_builders import consent, rules_dir, sends


def _bands(engine: Engine, count: int) -> list[tuple[str | None, str | None]]:
    moves = []
    for day in range(count):
        for item in engine.apply(ordered(f"o{day}", when=at(day))):
            if isinstance(item, ProfileChange) and item.kind == "churn_risk_changed":
                moves.append((item.before, item.after))
    return moves


def test_the_band_moves_up_at_the_high_threshold_and_back_only_at_the_low_one() -> None:
    engine = _engine(scores=[0.6, 0.72, 0.65, 0.55, 0.45, 0.69, 0.7])
    assert _bands(engine, 7) == [("low", "high"), ("high", "low"), ("low", "high")]


def test_a_first_score_below_high_sets_the_band_quietly() -> None:
    engine = _engine(scores=[0.2])
    assert _bands(engine, 1) == []
    profile = engine.store.get("c1")
    assert profile is not None
    assert (profile.churn.band, profile.churn.risk) == ("low", 0.2)


def test_a_first_score_at_high_is_reported() -> None:
    assert _bands(_engine(scores=[0.9]), 1) == [(None, "high")]


def test_no_risk_before_the_model_is_ready() -> None:
    from churn.model import ChurnLearner

    learner = ChurnLearner(min_labels=5)
    engine = Engine(
        MemoryProfileStore(),
        RuleSet.empty(),
        config=IMMEDIATE,
        churn=ChurnTracker(NO_CHECKINS, learner.scorer),
    )
    engine.apply(ordered("o1", when=at(0)))
    profile = engine.store.get("c1")
    assert profile is not None
    assert (profile.churn.risk, profile.churn.band) == (None, None)
    assert profile.churn.pending[0].score is None


WIN_BACK_ON_RISK = """
id: risk_win_back
trigger: {change: churn_risk_changed, to: high}
steps:
  - send: {channel: email, template: hello}
"""


def test_a_journey_starts_when_the_risk_band_turns_high(tmp_path: Path) -> None:
    directory = rules_dir(
        tmp_path, [WIN_BACK_ON_RISK], policies="channels: {email: {templates: [hello]}}\n"
    )
    tracker = ChurnTracker(ChurnConfig(checkin=0), FixedScorer([0.3, 0.8]))
    engine = Engine(MemoryProfileStore(), load_rules(directory), config=IMMEDIATE, churn=tracker)
    engine.apply(consent(when=at(0)))
    assert sends(engine.apply(ordered("o1", when=at(0)))) == []
    [sent] = sends(engine.apply(ordered("o2", when=at(1))))
    assert (sent.journey_id, sent.template) == ("risk_win_back", "hello")


def test_the_read_model_carries_the_risk_and_its_band() -> None:
    from state.read_model import read_model_fields

    engine = _engine(scores=[0.8125])
    engine.apply(ordered("o1", when=at(0)))
    profile = engine.store.get("c1")
    assert profile is not None
    fields = read_model_fields(profile)
    assert (fields["churn_risk"], fields["churn_band"]) == ("0.8125", "high")
