"""An engine rebuilt from stored profiles (a worker restart) goes on where the last one stopped."""

from __future__ import annotations

from pathlib import Path

import msgspec

from engine import Engine, EngineConfig
from rules.loader import DEFAULT_RULES_DIR, load_rules
from state.profile import Profile
from state.stores import MemoryProfileStore
from tests.builders import added, at, ordered, viewed
from tests.rules.journey_builders import consent, rules_dir, sends


def _restarted(engine: Engine) -> Engine:
    """A new engine over a copy of the old one's profiles, as recovered from a changelog."""
    store = MemoryProfileStore()
    for key in engine.store.sorted_keys():
        stored = msgspec.json.encode(engine.store.get(key))
        store.put(msgspec.json.decode(stored, type=Profile))
    fresh = Engine(store, engine.rules, engine.policy, engine.config)
    fresh.resume()
    return fresh


def test_events_redelivered_after_a_restart_change_nothing(tmp_path: Path) -> None:
    rules = load_rules(rules_dir(tmp_path))
    engine = Engine(MemoryProfileStore(), rules, config=EngineConfig(allowed_lateness_seconds=0))
    events = [consent(when=at(0)), viewed(when=at(0, 1)), ordered("o1", when=at(0, 2))]
    for item in events:
        engine.apply(item)
    before = msgspec.json.encode(engine.store.get("c1"))
    again = _restarted(engine)
    assert [out for item in events for out in again.apply(item)] == []
    assert msgspec.json.encode(again.store.get("c1")) == before
    assert again.stats.duplicates == len(events)


def test_a_wait_in_progress_fires_after_a_restart(tmp_path: Path) -> None:
    rules = load_rules(rules_dir(tmp_path))
    engine = Engine(MemoryProfileStore(), rules, config=EngineConfig(allowed_lateness_seconds=0))
    engine.apply(consent(when=at(0)))
    engine.apply(added("k1", when=at(1)))
    again = _restarted(engine)
    (reminder,) = sends(again.advance(at(1, 2).timestamp()))
    assert (reminder.template, reminder.at) == ("cart_reminder", at(1, 1).timestamp())


def test_positions_come_back_once_their_events_are_applied() -> None:
    engine = Engine(MemoryProfileStore(), load_rules(DEFAULT_RULES_DIR), config=EngineConfig(3600))
    engine.apply(viewed(when=at(0)), position=10)
    engine.apply(viewed(when=at(0, 0, 30)), position=11)
    assert engine.drain_done() == []  # both wait for the watermark
    engine.apply(viewed(when=at(0, 1, 5)), position=12)  # the watermark passes the first
    assert engine.drain_done() == [10]
    engine.apply(viewed(when=at(0, 1, 5), event_id="dup"), position=13)
    engine.apply(viewed(when=at(0, 1, 5), event_id="dup"), position=14)  # a duplicate
    assert engine.drain_done() == [14]
    engine.advance(at(1).timestamp())
    assert engine.drain_done() == [11, 13, 12]  # event-time order; at equal times, by id
