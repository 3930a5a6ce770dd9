"""The points ledger: earning, pending, clawbacks, caps, member days, FIFO redemption and
expiry, through the engine as replay and the worker run it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from engine import Engine, EngineConfig
from rules.loader import load_rules
from rules.yaml_source import RuleFileError
from schemas.events import Event
from state.audit import ErasureAudit
from state.changes import ProfileChange
from state.loyalty import DAY, points_at
from state.population import population
from state.profile import Profile
from state.stores import MemoryProfileStore
from tests.builders import IMMEDIATE, at, event, ordered

PROGRAM = """\
points:
  per_currency_unit: 1
  tier_multipliers: {member: 1, gold: 1.5}
  member_days:
    - {weekday: wednesday, multiplier: 2}
    - {date: "03-20", multiplier: 3}
  shop_time_zone: Asia/Shanghai
  pending_days: 14
  expiry_days: 100
  per_order_cap: 5000
  daily_cap: 6000
  review_points: 20
  registration_points: 100
"""


def _engine(tmp_path: Path, program: str = PROGRAM, config: EngineConfig = IMMEDIATE) -> Engine:
    (tmp_path / "loyalty.yaml").write_text(program, encoding="utf-8")
    return Engine(MemoryProfileStore(), load_rules(tmp_path), config=config)


def _run(engine: Engine, *events: Event) -> list[object]:
    outputs: list[object] = []
    for item in events:
        outputs += engine.apply(item)
    return outputs


def _profile(engine: Engine, key: str = "c1") -> Profile:
    profile = engine.store.get(key)
    assert profile is not None
    return profile


def _points(engine: Engine, days: float) -> tuple[int, int]:
    ledger = _profile(engine).points
    assert ledger is not None
    view = points_at(ledger, at(days=days).timestamp())
    return view.balance, view.pending


def test_an_order_earns_per_unit_pending_for_the_return_window(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _run(engine, ordered("o1", 120.99, when=at()))  # a Monday
    assert _points(engine, 1) == (0, 120)
    assert _points(engine, 14.01) == (120, 0)


def test_member_days_go_by_the_shops_calendar(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    # Tuesday 17:00 UTC is Wednesday 01:00 in Shanghai: a member day.
    _run(engine, ordered("o1", 100.0, when=at(days=1, hours=8)))
    # 20 March in Shanghai, a Friday: the date multiplier.
    _run(engine, ordered("o2", 100.0, when=at(days=18)))
    ledger = _profile(engine).points
    assert ledger is not None
    assert [lot.awarded for lot in ledger.lots] == [200, 300]


def test_per_order_and_daily_caps_bound_what_a_day_earns(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _run(engine, ordered("o1", 9000.0, when=at()), ordered("o2", 2000.0, when=at(hours=1)))
    ledger = _profile(engine).points
    assert ledger is not None
    assert [lot.awarded for lot in ledger.lots] == [5000, 1000]  # capped at 5000, then 6000 a day
    _run(engine, ordered("o3", 300.0, when=at(days=1)))
    assert ledger.lots[-1].awarded == 300  # a new day


def test_a_refund_inside_the_window_takes_back_pending_points_in_proportion(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    refund = event("order.refunded", when=at(days=3), order_id="o1", amount=25.0)
    _run(engine, ordered("o1", 100.0, when=at()), refund)
    assert _points(engine, 4) == (0, 75)
    cancel = event("order.cancelled", when=at(days=5), order_id="o1")
    _run(engine, cancel)
    assert _points(engine, 20) == (0, 0)


def test_a_late_refund_takes_from_the_balance_and_counts_what_it_could_not(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    redeem = event("points.redeemed", when=at(days=20), redemption_id="r1", points=90)
    refund = event("order.refunded", when=at(days=30), order_id="o1", amount=100.0)
    _run(engine, ordered("o1", 100.0, when=at()), redeem, refund)
    ledger = _profile(engine).points
    assert ledger is not None
    assert _points(engine, 31) == (0, 0)
    assert (ledger.clawed_back, ledger.shortfall) == (100, 90)


def test_redemptions_spend_the_soonest_expiring_points_and_overdrawing_is_refused(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    review = event("review.submitted", when=at(days=20), product_id="p1", rating=5)
    first = event("points.redeemed", when=at(days=21), redemption_id="r1", points=110)
    again = event("points.redeemed", when=at(days=21, hours=1), redemption_id="r1", points=110)
    greedy = event("points.redeemed", when=at(days=22), redemption_id="r2", points=11)
    outputs = _run(engine, ordered("o1", 100.0, when=at()), review, first, again, greedy)
    ledger = _profile(engine).points
    assert ledger is not None
    assert [(lot.lot_id, lot.remaining) for lot in ledger.lots] == [
        ("order:o1", 0),
        (f"review:{review.event_id}", 10),
    ]
    refused = [
        o for o in outputs if isinstance(o, ProfileChange) and o.kind == "points_redemption_refused"
    ]
    assert [(c.kind, c.before, c.after) for c in refused] == [
        ("points_redemption_refused", "11", "insufficient_points")
    ]
    assert (ledger.redeemed, ledger.refused, _points(engine, 23)) == (110, 1, (10, 0))


def test_points_expire_in_lots_after_the_expiry_period(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _run(
        engine,
        ordered("o1", 100.0, when=at()),
        ordered("o2", 50.0, when=at(days=50)),
        event("review.submitted", when=at(days=101), product_id="p1", rating=4),
    )
    ledger = _profile(engine).points
    assert ledger is not None
    assert ledger.expired == 100
    view = points_at(ledger, at(days=101).timestamp())
    assert (view.balance, view.next_expiry_points) == (70, 50)
    assert view.next_expiry_at == at(days=150).timestamp()


def test_registration_earns_once(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    registered = [event("customer.registered", when=at(hours=h)) for h in (0, 1)]
    _run(engine, *registered)
    assert _points(engine, 1) == (100, 0)


def test_a_day_checked_in_earns_once_however_often_it_is_sent(tmp_path: Path) -> None:
    engine = _engine(tmp_path, PROGRAM + "  check_in_points: 5\n")
    # 2026-03-02 (Monday) twice, then the shop's 2026-03-03 (Tuesday: no member day)
    twice = [event("member.checked_in", when=at(hours=h), event_id=f"k{h}") for h in (0, 1)]
    _run(engine, *twice, event("member.checked_in", when=at(1), date="2026-03-03"))
    assert _points(engine, 1.5) == (10, 0)


def test_a_program_without_check_in_points_opens_no_ledger_for_them(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _run(engine, event("member.checked_in", when=at(0)))
    assert _profile(engine).points is None


def test_a_stream_shuffled_within_the_lateness_gives_the_same_ledger(tmp_path: Path) -> None:
    rng = random.Random(7)
    events: list[Event] = []
    for number in range(200):
        when = at(days=number * 0.9)
        events.append(ordered(f"o{number}", float(rng.randint(10, 400)), when=when))
        if rng.random() < 0.3:
            events.append(
                event(
                    "order.refunded",
                    when=at(days=number * 0.9 + rng.choice([2, 20])),
                    order_id=f"o{number}",
                    amount=5.0,
                )
            )
        if rng.random() < 0.3:
            points = rng.randint(10, 300)
            events.append(
                event(
                    "points.redeemed",
                    when=at(days=number * 0.9 + 1),
                    redemption_id=f"r{number}",
                    points=points,
                )
            )
    events.sort(key=lambda e: e.occurred_at)
    lateness = EngineConfig(allowed_lateness_seconds=3 * DAY)
    shuffled = events[:]
    for index in range(len(shuffled) - 1):  # swap neighbours less than a day apart
        a, b = shuffled[index], shuffled[index + 1]
        if (b.occurred_at - a.occurred_at).total_seconds() < DAY and rng.random() < 0.5:
            shuffled[index], shuffled[index + 1] = b, a
    assert shuffled != events
    ledgers = []
    for stream, folder in ((events, tmp_path / "a"), (shuffled, tmp_path / "b")):
        folder.mkdir()
        engine = _engine(folder, config=lateness)
        _run(engine, *stream)
        engine.finish(at(days=400).timestamp())
        ledgers.append(_profile(engine).points)
    assert ledgers[0] == ledgers[1]
    assert ledgers[0] is not None
    assert ledgers[0].refused > 0
    assert ledgers[0].clawed_back > 0


def test_a_redelivered_order_never_earns_twice(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    order = ordered("o1", 100.0, when=at())
    same_order_new_id = ordered("o1", 100.0, when=at(minutes=5))
    _run(engine, order, order, same_order_new_id)
    assert _points(engine, 15) == (100, 0)


def test_a_bad_program_is_refused_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "loyalty.yaml").write_text(
        "points:\n  expiry_days: 0\n  shop_time_zone: Mars/Base\n", encoding="utf-8"
    )
    with pytest.raises(RuleFileError) as caught:
        load_rules(tmp_path)
    problems = "\n".join(caught.value.problems)
    assert "loyalty.yaml:2:" in problems
    assert "expiry_days" in problems
    assert "loyalty.yaml:3:" in problems
    assert "Mars/Base" in problems


def test_erasure_removes_the_ledger_and_the_audit_counts_it(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    review = event("review.submitted", when=at(days=1), product_id="p1", rating=5)
    erase = event("customer.erasure_requested", when=at(days=2))
    outputs = _run(engine, ordered("o1", 100.0, when=at()), review, erase)
    assert engine.store.get("c1") is None
    (audit,) = [o for o in outputs if isinstance(o, ErasureAudit)]
    assert (audit.points_lots, audit.points) == (2, 120)


def test_the_population_counts_members_outstanding_and_pending_points(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _run(
        engine,
        ordered("o1", 100.0, when=at()),
        ordered("o2", 50.0, when=at(days=20)),
        event("points.redeemed", when=at(days=21), redemption_id="r1", points=30),
        ordered("o3", 10.0, customer="c2", when=at(days=21)),
    )
    base = population(engine.store.profiles())
    assert (base.points_members, base.points_outstanding, base.points_pending) == (2, 70, 60)
    assert base.points_moved["redeemed"] == 30
    assert base.points_moved["earned"] == 160
