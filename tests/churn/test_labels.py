"""Snapshots get their labels at the horizon, in event time, from what happened after them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from churn.features import FEATURES
from churn.model import LinearScorer
from churn.tracker import ChurnConfig, ChurnLabel, ChurnTracker
from engine import Engine
from rules.loader import RuleSet
from state.profile import DAY
from state.stores import MemoryProfileStore
from tests.builders import IMMEDIATE, T0, at, ordered

NO_CHECKINS = ChurnConfig(checkin=0, refresh=0)


@dataclass
class FixedScorer:
    """Gives every snapshot the next score of a list (then the last one again)."""

    scores: list[float]
    version: int = 7

    def __call__(self) -> LinearScorer:
        score = self.scores.pop(0) if len(self.scores) > 1 else self.scores[0]
        # A model whose only weight is the intercept: sigmoid(z) = score.
        z = math.log(score / (1 - score))
        return LinearScorer(z, (0.0,) * len(FEATURES), self.version, ready=True)


def _engine(config: ChurnConfig = NO_CHECKINS, scores: list[float] | None = None) -> Engine:
    tracker = ChurnTracker(config, FixedScorer(scores or [0.3]))
    return Engine(MemoryProfileStore(), RuleSet.empty(), config=IMMEDIATE, churn=tracker)


def _labels(outputs: Sequence[object]) -> list[ChurnLabel]:
    return [item for item in outputs if isinstance(item, ChurnLabel)]


def test_an_order_within_the_horizon_makes_the_earlier_snapshot_retained_at_its_horizon() -> None:
    engine = _engine()
    assert _labels(engine.apply(ordered("o1", when=at(0)))) == []
    assert _labels(engine.apply(ordered("o2", when=at(30)))) == []
    assert _labels(engine.advance(T0.timestamp() + 90 * DAY - 1)) == []  # not yet known
    [label] = _labels(engine.advance(T0.timestamp() + 90 * DAY))
    assert (label.snapshot_at, label.churned, label.kind) == (T0.timestamp(), False, "order")
    assert label.at == T0.timestamp() + 90 * DAY


def test_no_order_within_the_horizon_makes_the_snapshot_churned() -> None:
    engine = _engine()
    engine.apply(ordered("o1", when=at(0)))
    engine.apply(ordered("o2", when=at(30)))
    engine.advance(T0.timestamp() + 90 * DAY)
    [label] = _labels(engine.advance(T0.timestamp() + 120 * DAY))
    assert (label.snapshot_at, label.churned) == (at(30).timestamp(), True)


def test_an_order_in_the_same_second_counts_as_coming_after_the_snapshot() -> None:
    engine = _engine()
    engine.apply(ordered("o1", when=at(0)))
    engine.apply(ordered("o2", when=at(0)))
    labels = _labels(engine.advance(T0.timestamp() + 90 * DAY))
    assert [label.churned for label in labels] == [False, True]


def test_an_order_after_the_horizon_does_not_rescue_the_snapshot() -> None:
    engine = _engine()
    engine.apply(ordered("o1", when=at(0)))
    labels = _labels(engine.apply(ordered("o2", when=at(91))))  # the label fires first
    assert [label.churned for label in labels] == [True]


def test_a_label_carries_the_score_and_model_version_the_snapshot_was_given() -> None:
    engine = _engine(scores=[0.25])
    engine.apply(ordered("o1", when=at(0)))
    [label] = _labels(engine.advance(T0.timestamp() + 90 * DAY))
    assert label.score is not None
    assert round(label.score, 6) == 0.25
    assert label.version == 7


def test_check_ins_snapshot_a_quiet_customer_every_interval_until_the_limit() -> None:
    config = ChurnConfig(checkin=30 * DAY, checkin_until=90 * DAY, refresh=0)
    engine = _engine(config)
    engine.apply(ordered("o1", when=at(0)))
    engine.advance(T0.timestamp() + 400 * DAY)
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.churn.checked_in_at == at(90).timestamp()  # days 30, 60 and 90, no more
    assert profile.churn.pending == []  # every snapshot has been labelled by day 400
    assert profile.churn.next_due_at is None


def test_a_visitor_without_a_customer_id_gets_no_snapshots() -> None:
    engine = _engine()
    engine.apply(ordered("o1", when=at(0), customer=None, anonymous="a1"))
    profile = engine.store.get("anon:a1")
    assert profile is not None
    assert profile.churn.pending == []


def test_a_quiet_customers_risk_keeps_being_refreshed_after_the_last_check_in() -> None:
    config = ChurnConfig(checkin=30 * DAY, checkin_until=90 * DAY, refresh=30 * DAY)
    engine = _engine(config, scores=[0.3, 0.3, 0.3, 0.3, 0.9])
    engine.apply(ordered("o1", when=at(0)))
    outputs = engine.advance(T0.timestamp() + 400 * DAY)
    profile = engine.store.get("c1")
    assert profile is not None
    state = profile.churn
    assert state.risk_at is not None
    assert T0.timestamp() + 370 * DAY <= state.risk_at <= T0.timestamp() + 400 * DAY
    assert state.checked_in_at == at(90).timestamp()  # refreshes take no snapshot
    assert len(_labels(outputs)) == 4  # the order's and three check-ins', no more
    assert state.band == "high"  # a refresh can move the band


def test_the_end_of_a_replay_scores_every_customer_as_of_that_moment() -> None:
    engine = _engine(NO_CHECKINS)
    engine.apply(ordered("o1", when=at(0)))
    engine.finish(at(50).timestamp())
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.churn.risk_at == at(50).timestamp()


def test_a_customer_past_the_snapshot_bound_gets_no_label_before_its_horizon() -> None:
    engine = _engine(NO_CHECKINS)
    outputs: list[object] = []
    for index in range(40):
        outputs += engine.apply(ordered(f"o{index}", when=at(0, index)))
    outputs += engine.advance(T0.timestamp() + 200 * DAY)
    labels = _labels(outputs)
    assert all(label.at == label.snapshot_at + NO_CHECKINS.horizon for label in labels)
    assert len(labels) == 32
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.churn.skipped == 8
