"""Arrival order within the allowed lateness must not change the final profiles."""

import random

from rules.engine import Engine, EngineConfig
from rules.loader import DEFAULT_RULES_DIR, load_rules
from schemas.decode import DeadLetter, decode_event
from schemas.events import Event
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig, generate_stream
from streams.replay import profiles_of

LATENESS = 3600.0


def _events(seed: int) -> list[Event]:
    cfg = GeneratorConfig(customers=150, days=60, seed=seed, duplicates=0.0, delayed=0.0)
    decoded = [decode_event(line) for line in generate_stream(cfg)]
    return [e for e in decoded if not isinstance(e, DeadLetter)]


def _shuffle_within_lateness(events: list[Event], rng: random.Random) -> list[Event]:
    """Each event arrives up to half the allowed lateness after its event time."""
    keyed = [(e.occurred_at.timestamp() + rng.uniform(0, LATENESS / 2), i, e) for i, e in enumerate(events)]
    return [e for _, _, e in sorted(keyed)]


def _final_profiles(events: list[Event]) -> list[bytes]:
    engine = Engine(MemoryProfileStore(), load_rules(DEFAULT_RULES_DIR),
                    config=EngineConfig(allowed_lateness_seconds=LATENESS))
    for event in events:
        engine.process(event)
        engine.advance(engine.watermark)
    engine.advance(engine.newest_event_time)
    return profiles_of(engine)


def test_shuffled_arrival_gives_the_same_final_profiles() -> None:
    events = sorted(_events(seed=5), key=lambda e: e.occurred_at)
    expected = _final_profiles(events)
    assert len(expected) > 100
    for trial in range(3):
        shuffled = _shuffle_within_lateness(events, random.Random(trial))
        assert shuffled != events
        assert _final_profiles(shuffled) == expected
