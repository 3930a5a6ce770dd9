"""Edges of identity and retention found by outside testing: customer and visitor keys
never meet, retention anonymises only a dormant profile whatever arrives late, and each
anonymisation is counted once, as such."""

from __future__ import annotations

import pytest

from engine import Engine, EngineConfig
from rules.loader import RuleSet
from schemas.decode import DeadLetter, decode_event
from state.changes import ProfileChange
from state.policy import PrivacyPolicy, ProfilePolicy
from state.stores import MemoryProfileStore
from tests.builders import at, event, ordered, viewed

LATENESS = EngineConfig(allowed_lateness_seconds=3600.0)


def test_a_customer_id_with_the_visitor_prefix_is_refused_naming_the_field() -> None:
    raw = (
        b'{"type":"product.viewed","event_id":"e1","customer_id":"anon:v1",'
        b'"occurred_at":"2026-03-02T09:00:00Z","properties":{"product_id":"p1"}}'
    )
    letter = decode_event(raw)
    assert isinstance(letter, DeadLetter)
    assert letter.reason == "invalid_event"
    assert "may not start with 'anon:'" in letter.detail


def test_a_visitor_and_a_customer_of_the_same_id_keep_two_profiles() -> None:
    engine = Engine(MemoryProfileStore(), RuleSet.empty(), config=LATENESS)
    engine.apply(viewed(customer=None, anonymous="x", when=at(0)))
    engine.apply(ordered("o1", customer="x", when=at(0, 1)))
    engine.finish(at(0, 2).timestamp())
    visitor, customer = engine.store.get("anon:x"), engine.store.get("x")
    assert visitor is not None
    assert customer is not None
    assert (visitor.orders.count, customer.orders.count) == (0, 1)


def _retaining(days: int = 30) -> Engine:
    policy = ProfilePolicy(privacy=PrivacyPolicy(retention_days=days))
    return Engine(MemoryProfileStore(), RuleSet.empty(), policy, LATENESS)


def _erased(outputs: list[object]) -> list[float]:
    return [
        round((o.at - at(0).timestamp()) / 86_400, 3)
        for o in outputs
        if isinstance(o, ProfileChange) and o.kind == "profile_erased"
    ]


@pytest.mark.parametrize(
    "recent",
    [
        [viewed(when=at(100))],  # still held for the watermark when the late one comes
        [viewed(when=at(95)), viewed(when=at(100))],  # one of them applied already
    ],
    ids=["held", "applied"],
)
def test_a_late_event_older_than_the_retention_never_anonymises_an_active_customer(
    recent: list[object],
) -> None:
    engine = _retaining()
    outputs: list[object] = []
    for item in [*recent, ordered("o1", when=at(10))]:  # the order arrives 90 days late
        outputs += engine.apply(item)  # type: ignore[arg-type]
    outputs += engine.finish(engine.newest_event_time)
    assert _erased(outputs) == []
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.orders.count == 1  # the late order is kept, not dropped


def test_retention_still_anonymises_a_customer_who_was_dormant_that_long() -> None:
    engine = _retaining()
    outputs: list[object] = []
    for item in [viewed(when=at(0)), viewed(when=at(100))]:
        outputs += engine.apply(item)
    outputs += engine.finish(engine.newest_event_time)
    assert _erased(outputs) == [30.0]
    assert (engine.stats.anonymised, engine.stats.erasures) == (1, 0)


def test_an_anonymisation_is_counted_once_under_its_cause_and_a_request_under_its_own() -> None:
    engine = _retaining()
    for item in [
        viewed(when=at(0)),
        viewed(customer="c2", when=at(40)),
        event("customer.erasure_requested", customer="c2", when=at(41)),
    ]:
        engine.apply(item)
    engine.finish(engine.newest_event_time)
    assert (engine.stats.anonymised, engine.stats.erasures) == (1, 1)
