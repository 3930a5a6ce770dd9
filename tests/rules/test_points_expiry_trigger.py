"""The points-expiry trigger: it fires a window before lots expire, once per expiry, with
the amount as of that moment, and looks again when the ledger changes."""

from __future__ import annotations

from pathlib import Path

from engine import Engine
from rules.actions import Action
from tests.builders import at, event, ordered
from tests.rules.journey_builders import consent, journey_engine, rules_dir, sends

PROGRAM = """
points:
  per_currency_unit: 1
  pending_days: 0
  expiry_days: 60
"""
JOURNEY = """
id: expiring
trigger: {points_expiring: 10d, at_least: 50}
steps:
  - send: {channel: email, template: hello, payload: {points: event.points, at: event.expires_at}}
"""
POLICIES = "channels: {email: {templates: [hello]}}\n"


def _engine(tmp_path: Path) -> Engine:
    directory = rules_dir(tmp_path, [JOURNEY], policies=POLICIES)
    (directory / "loyalty.yaml").write_text(PROGRAM)
    return journey_engine(directory)


def _run(engine: Engine, *events: object, until: float) -> list[Action]:
    out: list[object] = []
    for item in events:
        out += engine.apply(item)  # type: ignore[arg-type]
    out += engine.advance(until)
    return sends(out)


def test_it_fires_a_window_before_each_expiry_with_the_points_then_expiring(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    first, second = _run(
        engine,
        consent(when=at(0)),
        ordered("o1", total=80, when=at(1)),
        ordered("o2", total=120, when=at(20)),
        until=at(90).timestamp(),
    )
    assert (first.at, first.payload["points"]) == (at(51).timestamp(), 80)
    assert first.payload["at"] == at(61).timestamp()
    assert (second.at, second.payload["points"]) == (at(70).timestamp(), 120)


def test_points_spent_before_the_window_move_it_to_the_next_lot(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    (only,) = _run(
        engine,
        consent(when=at(0)),
        ordered("o1", total=80, when=at(1)),
        ordered("o2", total=120, when=at(20)),
        event("points.redeemed", redemption_id="r1", points=80, when=at(30)),
        until=at(90).timestamp(),
    )
    assert (only.at, only.payload["points"]) == (at(70).timestamp(), 120)


def test_fewer_points_than_asked_for_fire_nothing_and_the_next_lot_still_counts(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    (only,) = _run(
        engine,
        consent(when=at(0)),
        ordered("o1", total=20, when=at(1)),
        ordered("o2", total=70, when=at(5)),
        until=at(90).timestamp(),
    )
    # day 51: 20 points expire by day 61, too few; day 55: the 70 expiring by day 65
    # and the 20 still there, 90 together
    assert (only.at, only.payload["points"]) == (at(55).timestamp(), 90)


BIRTHDAY = """
id: birthday
trigger: {anniversary: birthday, at: "09:00"}
holdout: 0.5
steps:
  - points: 150
"""


def test_a_points_step_gives_once_per_run_and_never_to_the_holdout(tmp_path: Path) -> None:
    from rules.journey_moves import assign_arm
    from state.changes import ProfileChange
    from state.loyalty import points_at

    directory = rules_dir(tmp_path, [BIRTHDAY], policies=POLICIES)
    (directory / "loyalty.yaml").write_text(PROGRAM)
    engine = journey_engine(directory)
    customers = [f"c{n}" for n in range(12)]
    out: list[object] = []
    for customer in customers:
        out += engine.apply(
            event("customer.updated", when=at(0), customer=customer, birthday="1990-03-05")
        )
    out += engine.advance(at(4).timestamp())
    journey = engine.rules.journeys.by_id["birthday"]
    gifted = {
        c.profile_key for c in out if isinstance(c, ProfileChange) and c.kind == "points_awarded"
    }
    profiles = {c: engine.store.get(c) for c in customers}
    held = {c for c, p in profiles.items() if p is not None and assign_arm(journey, p) == "holdout"}
    assert held
    assert gifted == set(customers) - held
    for customer in gifted:
        profile = profiles[customer]
        assert profile is not None
        assert profile.points is not None
        assert points_at(profile.points, at(4).timestamp()).balance == 150
    # the next year's birthday is another run: another 150
    engine.advance(at(370).timestamp())
    some = engine.store.get(sorted(gifted)[0])
    assert some is not None
    assert some.points is not None
    assert points_at(some.points, at(370).timestamp()).balance == 150  # 60-day expiry


def test_a_points_step_without_a_program_is_an_error_at_the_step(tmp_path: Path) -> None:
    import pytest

    from rules.loader import load_rules
    from rules.yaml_source import RuleFileError

    directory = rules_dir(tmp_path, [BIRTHDAY], policies=POLICIES)
    with pytest.raises(
        RuleFileError, match=r"journey_0.yaml:\d+:\d+: steps.0.points: a points step"
    ):
        load_rules(directory)
