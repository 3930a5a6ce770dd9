"""Tiers on growth value (成长值): earned from net spend, reviews and check-ins over the
qualifying months; up at once, down after the grace period; today's spend tiers untouched."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from engine import Engine
from rules.loader import RuleSet
from schemas.events import Event
from state.changes import ProfileChange
from state.policy import ProfilePolicy, TierPolicy
from state.profile import Profile
from state.stores import MemoryProfileStore
from tests.builders import IMMEDIATE, at, event, ordered

GROWTH = {
    "basis": "growth",
    "qualifying_months": 1,
    "downgrade_grace_days": 30,
    "growth": {"per_currency_unit": 1, "review": 10, "check_in": 2},
    "levels": [
        {"name": "member", "min_growth": 0},
        {"name": "silver", "min_growth": 100},
        {"name": "gold", "min_growth": 300},
    ],
}


def _engine(tiers: dict[str, object] = GROWTH) -> Engine:
    policy = ProfilePolicy(tiers=TierPolicy.model_validate(tiers))
    return Engine(MemoryProfileStore(), RuleSet.empty(), policy, IMMEDIATE)


def _tier_changes(engine: Engine, *events: Event, until: float | None = None) -> list[str]:
    changes: list[object] = []
    for item in events:
        changes += engine.apply(item)
    if until is not None:
        changes += engine.advance(until)
    return [
        f"{c.before}->{c.after}"
        for c in changes
        if isinstance(c, ProfileChange) and c.kind == "tier_changed"
    ]


def _profile(engine: Engine) -> Profile:
    profile = engine.store.get("c1")
    assert profile is not None
    return profile


def test_reviews_and_one_check_in_a_day_add_to_the_spend_and_lift_the_tier_at_once() -> None:
    engine = _engine()
    checked_in = [
        event("member.checked_in", when=at(1, hour), event_id=f"k{hour}") for hour in (1, 2, 3)
    ]
    moves = _tier_changes(
        engine,
        ordered("o1", total=80.0, when=at(1)),  # 80
        event("review.submitted", when=at(1, 0, 30), product_id="p1", rating=5),  # 90
        *checked_in,  # one day: 92
        event("member.checked_in", when=at(2), date=at(2).date().isoformat()),  # 94
        event("review.submitted", when=at(2, 1), product_id="p2", rating=4),  # 104
    )
    assert moves == ["member->silver"]
    profile = _profile(engine)
    assert (profile.next_tier, profile.to_next_tier_growth) == ("gold", 196)
    assert profile.to_next_tier_cents is None


def test_a_downgrade_waits_out_the_grace_period_and_climbing_back_ends_it() -> None:
    engine = _engine()
    # 150 growth in March; the window is the current month, so April starts at 0.
    assert _tier_changes(engine, ordered("o1", total=150.0, when=at(2))) == ["member->silver"]
    april = datetime(2026, 4, 1, tzinfo=UTC).timestamp()  # the review then finds 0
    assert _tier_changes(engine, until=april + 3600) == []
    profile = _profile(engine)
    assert (profile.tier, profile.tier_grace_until) == ("silver", april + 30 * 86_400)
    assert _tier_changes(engine, until=april + 30 * 86_400 - 1) == []
    # 30 days later the tier goes down to what the customer then has
    assert _tier_changes(engine, until=april + 30 * 86_400) == ["silver->member"]


def test_climbing_back_during_the_grace_keeps_the_tier_and_clears_the_grace() -> None:
    engine = _engine()
    _tier_changes(engine, ordered("o1", total=150.0, when=at(2)))
    _tier_changes(engine, until=at(32).timestamp())
    assert _tier_changes(engine, ordered("o2", total=120.0, when=at(40))) == []
    profile = _profile(engine)
    assert (profile.tier, profile.tier_grace_until) == ("silver", None)


def test_without_a_grace_period_spend_tiers_move_as_before() -> None:
    engine = _engine({})
    assert _tier_changes(engine, ordered("o1", total=600.0, when=at(2))) == ["member->silver"]
    profile = _profile(engine)
    assert (profile.next_tier, profile.to_next_tier_cents) == ("gold", 140_000)
    assert profile.to_next_tier_growth is None
    # reviews and check-ins are counted but do not move spend tiers
    assert _tier_changes(engine, event("member.checked_in", when=at(3))) == []


def test_growth_tiers_need_a_min_growth_on_every_level() -> None:
    with pytest.raises(ValidationError, match="min_growth on every level"):
        TierPolicy.model_validate(
            {"basis": "growth", "levels": [{"name": "member"}, {"name": "gold", "min_spend": 5}]}
        )
