"""Timers fire in their place in event time, whatever else the same ``advance`` does."""

from __future__ import annotations

from engine import Engine, EngineConfig
from rules.actions import JourneyMilestone
from rules.loader import DEFAULT_RULES_DIR, load_rules
from state.changes import ProfileChange
from state.stores import MemoryProfileStore
from tests.builders import added, at, event, ordered


def test_a_timer_armed_after_an_erasure_in_the_same_advance_fires_in_its_place() -> None:
    """An erasure takes its profile's timers out of the queue. A timer armed later in the
    same ``advance`` (a cart's recovery run, entered at once) must still fire before the
    events after it, not one ``advance`` late."""
    engine = Engine(
        MemoryProfileStore(),
        load_rules(DEFAULT_RULES_DIR),
        config=EngineConfig(allowed_lateness_seconds=3600.0),
    )
    for item in (
        ordered("o1", customer="gone", when=at(0)),
        event("customer.erasure_requested", customer="gone", when=at(0, 0, 10)),
        added("k1", "p1", customer="carter", when=at(0, 0, 20)),
        ordered("o2", customer="later", when=at(0, 0, 30)),
    ):
        engine.apply(item)  # all wait: the watermark is an hour behind
    outputs = engine.advance(at(0, 0, 40).timestamp())
    order = [
        (item.kind, item.profile_key)
        for item in outputs
        if (type(item) is JourneyMilestone and item.kind == "entered")
        or (type(item) is ProfileChange and item.kind == "lifecycle_changed")
    ]
    assert ("entered", "carter") in order
    assert order.index(("entered", "carter")) < order.index(("lifecycle_changed", "later"))
