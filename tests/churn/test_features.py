"""A snapshot's features are the profile as it stood at the snapshot: nothing later leaks in."""

from __future__ import annotations

import random
from collections import defaultdict
from functools import cache

from churn.features import FEATURES, features
from churn.model import ChurnLearner
from churn.tracker import ChurnConfig
from engine import Engine
from rules.loader import RuleSet
from schemas.decode import decode_event
from schemas.events import Event
from state.profile import DAY
from state.stores import MemoryProfileStore
from streams.churn_backtest import evaluate
from streams.generator import GeneratorConfig, generate_stream
from tests.builders import IMMEDIATE


@cache
def _events() -> tuple[Event, ...]:
    """A generated stream in event-time order, once each (the engine runs without lateness)."""
    seen: dict[str, Event] = {}
    for line in generate_stream(GeneratorConfig(customers=120, days=240, seed=5)):
        event = decode_event(line)
        if isinstance(event, Event):
            seen.setdefault(event.event_id, event)
    return tuple(sorted(seen.values(), key=lambda e: (e.occurred_at, e.event_id)))


def _key(event: Event) -> str:
    return event.customer_id or f"anon:{event.anonymous_id}"


def test_every_snapshot_equals_the_features_of_a_replay_cut_at_its_moment() -> None:
    events = _events()
    config = ChurnConfig(checkin=30 * DAY)
    result = evaluate(events, config, ChurnLearner(min_labels=5), lateness_seconds=0)
    # A snapshot at the same second as another event of its customer is ambiguous (which
    # came first is decided by event id); leave those out.
    moments: defaultdict[tuple[str | None, float], int] = defaultdict(int)
    for event in events:
        moments[(_key(event), event.occurred_at.timestamp())] += 1
    clear = [
        label
        for label in result.labels
        if moments[(label.profile_key, label.snapshot_at)] <= (label.kind == "order")
    ]
    kinds = {label.kind for label in clear}
    assert kinds == {"order", "checkin"}, kinds
    for label in random.Random(3).sample(clear, 25):
        engine = Engine(MemoryProfileStore(), RuleSet.empty(), config=IMMEDIATE)
        for event in events:
            if event.occurred_at.timestamp() > label.snapshot_at:
                break
            engine.apply(event)
        engine.advance(label.snapshot_at)
        assert label.profile_key is not None
        profile = engine.store.get(label.profile_key)
        assert profile is not None
        got = dict(zip(FEATURES, features(profile, label.snapshot_at), strict=True))
        want = dict(zip(FEATURES, label.values, strict=True))
        assert got == want, (label.kind, label.snapshot_at)


def test_the_same_stream_twice_gives_the_same_scores_and_labels() -> None:
    events = _events()
    config = ChurnConfig(horizon=30 * DAY, checkin=10 * DAY)  # labels soon enough to score
    first = evaluate(events, config, ChurnLearner(min_labels=5))
    second = evaluate(events, config, ChurnLearner(min_labels=5))
    assert [label.score for label in first.labels] == [label.score for label in second.labels]
    assert first.labels == second.labels
    assert any(label.score is not None for label in first.labels)
