from engine import Engine
from rules.loader import RuleSet
from state.stores import MemoryProfileStore
from tests.builders import IMMEDIATE, at, changes_of, event, ordered

DAY = 86400.0


def _engine() -> Engine:
    return Engine(MemoryProfileStore(), RuleSet.empty(), config=IMMEDIATE)


def test_lifecycle_moves_through_stages_as_time_passes_without_orders() -> None:
    engine = _engine()
    changes = engine.apply(ordered("o1", 50.0, when=at(0)))
    changes += engine.advance(at(200).timestamp())
    assert [c.after for c in changes_of(changes) if c.kind == "lifecycle_changed"] == [
        "new",
        "active",
        "at_risk",
        "dormant",
        "churned",
    ]


def test_order_after_a_long_gap_makes_the_customer_won_back() -> None:
    engine = _engine()
    engine.apply(ordered("o1", when=at(0)))
    engine.advance(at(150).timestamp())
    changes = engine.apply(ordered("o2", when=at(150)))
    assert [(c.before, c.after) for c in changes_of(changes) if c.kind == "lifecycle_changed"] == [
        ("dormant", "won_back")
    ]


def test_tier_goes_up_on_spend_and_down_when_the_spend_leaves_the_window() -> None:
    engine = _engine()
    up = engine.apply(ordered("o1", 2500.0, when=at(0)))
    assert [(c.before, c.after) for c in changes_of(up) if c.kind == "tier_changed"] == [
        ("member", "gold")
    ]
    down = engine.advance(at(400).timestamp())
    assert [(c.before, c.after) for c in changes_of(down) if c.kind == "tier_changed"] == [
        ("gold", "member")
    ]


def test_refund_can_downgrade_the_tier() -> None:
    engine = _engine()
    engine.apply(ordered("o1", 600.0, when=at(0)))
    changes = engine.apply(event("order.refunded", when=at(5), order_id="o1", amount=200.0))
    assert [(c.before, c.after) for c in changes_of(changes) if c.kind == "tier_changed"] == [
        ("silver", "member")
    ]


def test_rfm_scores_follow_the_orders() -> None:
    engine = _engine()
    for day in range(7):
        engine.apply(ordered(f"o{day}", 500.0, when=at(day)))
    profile = engine.store.get("c1")
    assert profile is not None
    assert (
        profile.rfm.recency,
        profile.rfm.frequency,
        profile.rfm.monetary,
        profile.rfm.segment,
    ) == (5, 5, 5, "champions")
