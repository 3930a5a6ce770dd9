"""Arrival order within the allowed lateness must not change the final profiles.

The engine applies events in event-time order once the watermark passes them, so every
field of every profile (journey state included) must match, byte for byte.
"""

import random

from engine import Engine, EngineConfig
from rules.loader import DEFAULT_RULES_DIR, load_rules
from schemas.decode import decode_event, events_of
from schemas.events import Event
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig, generate_stream
from streams.replay import profiles_of
from tests.builders import added, at, event, ordered, removed

LATENESS = 3600.0


def _events(seed: int) -> list[Event]:
    cfg = GeneratorConfig(customers=150, days=60, seed=seed, duplicates=0.0, delayed=0.0)
    return list(events_of(decode_event(line) for line in generate_stream(cfg)))


def _shuffle_within_lateness(events: list[Event], rng: random.Random) -> list[Event]:
    """Each event arrives up to half the allowed lateness after its event time."""
    keyed = [
        (e.occurred_at.timestamp() + rng.uniform(0, LATENESS / 2), i, e)
        for i, e in enumerate(events)
    ]
    return [e for _, _, e in sorted(keyed)]


def _final_profiles(events: list[Event]) -> list[bytes]:
    engine = Engine(
        MemoryProfileStore(),
        load_rules(DEFAULT_RULES_DIR),
        config=EngineConfig(allowed_lateness_seconds=LATENESS),
    )
    for item in events:
        engine.apply(item)
        engine.advance(engine.watermark)
    engine.finish(engine.newest_event_time)
    return profiles_of(engine)


def test_shuffled_arrival_gives_the_same_final_profiles() -> None:
    events = sorted(_events(seed=5), key=lambda e: e.occurred_at)
    runs = [_final_profiles(events)]
    for trial in range(3):
        shuffled = _shuffle_within_lateness(events, random.Random(trial))
        assert shuffled != events
        runs.append(_final_profiles(shuffled))
    expected, *others = runs
    assert len(expected) > 100
    assert any(b'"carts_evicted":0' not in profile for profile in expected)  # bounds were hit
    for other in others:
        assert other == expected


def test_carts_within_their_bound_do_not_depend_on_arrival_order() -> None:
    events = [
        added("k1", "p1", quantity=2, when=at(0)),
        added("k1", "p2", when=at(0, 0, 1)),
        removed("k1", "p1", when=at(0, 0, 2)),
        added("k2", "p3", when=at(0, 0, 3)),
        event("checkout.started", cart_id="k2", when=at(0, 0, 4)),
        ordered("o1", cart="k2", when=at(0, 0, 5)),
        added("k3", "p4", when=at(0, 0, 6)),
        event("cart.cleared", cart_id="k3", when=at(0, 0, 7)),
        added("k4", "p5", price=12.5, when=at(0, 0, 8)),
    ]
    for trial in range(20):
        shuffled = events[:]
        random.Random(trial).shuffle(shuffled)
        engine = Engine(MemoryProfileStore(), load_rules(DEFAULT_RULES_DIR))
        for item in shuffled:
            engine.apply(item)
        engine.finish(engine.newest_event_time)
        profile = engine.store.get("c1")
        assert profile is not None
        assert sorted(profile.carts) == ["k1", "k4"]
        assert {k: c.value for k, c in profile.carts.items()} == {"k1": 60.0, "k4": 12.5}
        assert profile.closed_carts == {
            "k2": at(0, 0, 5).timestamp(),
            "k3": at(0, 0, 7).timestamp(),
        }
