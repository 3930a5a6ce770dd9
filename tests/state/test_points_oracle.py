"""Rapport's points ledgers against an independent computation: plain Python over the
generated stream, from the YAML's own words, with fractions instead of decimals and none
of ``state/loyalty.py``'s code."""

from __future__ import annotations

import json
import random
from dataclasses import astuple, dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ruamel.yaml import YAML

from engine import Engine, EngineConfig
from engine.driver import Driver
from rules.loader import load_rules
from schemas.decode import DeadLetter, PartialEvent, decode_event
from state.loyalty import MAX_LOTS, points_at
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig, generate_stream

PROGRAM = """\
points:
  per_currency_unit: 1.5
  member_days:
    - {weekday: wednesday, multiplier: 2}
    - {date: "02-14", multiplier: 3}
  member_days_apply_to: [order, review]
  shop_time_zone: Asia/Shanghai
  pending_days: 14
  expiry_days: 45
  per_order_cap: 400
  daily_cap: 500
  review_points: 25
  registration_points: 100
"""
DAY = 86_400
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


@dataclass
class _Lot:
    key: str
    spendable_from: float
    expires: float
    points: int
    left: int
    total: int = 0
    refunded: int = 0
    taken: int = 0


@dataclass
class _Customer:
    lots: list[_Lot] = field(default_factory=list)
    earned: int = 0
    redeemed: int = 0
    clawed: int = 0
    shortfall: int = 0
    refused: int = 0
    day: str = ""
    today: int = 0
    registered: bool = False
    spent_ids: set[str] = field(default_factory=set)


class _Oracle:
    """The program as its YAML says it, applied to events sorted by time and id."""

    def __init__(self, program: dict[str, Any]) -> None:
        points = program["points"]
        self.per_unit = Fraction(str(points["per_currency_unit"]))
        self.member_days = points["member_days"]
        self.multiplied = set(points["member_days_apply_to"])
        self.zone = ZoneInfo(points["shop_time_zone"])
        self.pending = points["pending_days"] * DAY
        self.expiry = points["expiry_days"] * DAY
        self.order_cap, self.day_cap = points["per_order_cap"], points["daily_cap"]
        self.review, self.registration = points["review_points"], points["registration_points"]
        self.customers: dict[str, _Customer] = {}

    def factor(self, kind: str, at: float) -> Fraction:
        local = datetime.fromtimestamp(at, self.zone)
        for day in self.member_days:
            weekday_hit = day.get("weekday") == WEEKDAYS[local.weekday()]
            if kind in self.multiplied and (
                weekday_hit or day.get("date") == local.strftime("%m-%d")
            ):
                return Fraction(str(day["multiplier"]))
        return Fraction(1)

    def add(self, who: _Customer, lot: _Lot, at: float) -> None:
        today = datetime.fromtimestamp(at, self.zone).date().isoformat()
        if who.day != today:
            who.day, who.today = today, 0
        lot.points = lot.left = max(0, min(lot.points, self.day_cap - who.today))
        if lot.points:
            who.today += lot.points
            who.earned += lot.points
            who.lots.append(lot)
            assert len(who.lots) <= MAX_LOTS, "the stream must stay below the merge bound"

    def spendable(self, who: _Customer, at: float) -> list[_Lot]:
        ready = [lot for lot in who.lots if lot.spendable_from <= at < lot.expires]
        return sorted(ready, key=lambda lot: (lot.expires, lot.key))

    def apply(self, record: dict[str, Any]) -> None:
        at = datetime.fromisoformat(record["occurred_at"]).timestamp()
        who = self.customers.setdefault(record["customer_id"], _Customer())
        who.lots = [lot for lot in who.lots if lot.expires > at]
        kind, props = record["type"], record["properties"]
        if kind == "order.placed":
            key = "order:" + props["order_id"]
            cents = round(props["total"] * 100)
            if cents > 0 and all(lot.key != key for lot in who.lots):
                exact = cents * self.per_unit * self.factor("order", at) / 100
                points = min(exact.numerator // exact.denominator, self.order_cap)
                lot = _Lot(key, at + self.pending, at + self.expiry, points, points, total=cents)
                self.add(who, lot, at)
        elif kind in ("order.refunded", "order.cancelled"):
            found = next((x for x in who.lots if x.key == "order:" + props["order_id"]), None)
            if found is None:
                return
            lot = found
            amount = props.get("amount")
            lot.refunded = (
                lot.total if amount is None else min(lot.total, lot.refunded + round(amount * 100))
            )
            owed = lot.points - lot.points * (lot.total - lot.refunded) // lot.total - lot.taken
            if owed <= 0:
                return
            lot.taken += owed
            who.clawed += owed
            from_lot = min(owed, lot.left)
            lot.left -= from_lot
            owed -= from_lot
            if owed and lot.spendable_from <= at:
                for other in self.spendable(who, at):
                    taken = min(other.left, owed)
                    other.left -= taken
                    owed -= taken
            who.shortfall += owed
        elif kind == "review.submitted":
            exact = self.review * self.factor("review", at)
            points = exact.numerator // exact.denominator
            self.add(
                who, _Lot("review:" + record["event_id"], at, at + self.expiry, points, points), at
            )
        elif kind == "customer.registered" and not who.registered:
            who.registered = True
            self.add(who, _Lot("registration", at, at + self.expiry, self.registration, 0), at)
        elif kind == "points.redeemed" and props["redemption_id"] not in who.spent_ids:
            wanted = props["points"]
            if wanted > sum(lot.left for lot in self.spendable(who, at)):
                who.refused += 1
                return
            who.spent_ids.add(props["redemption_id"])
            who.redeemed += wanted
            for lot in self.spendable(who, at):
                taken = min(lot.left, wanted)
                lot.left -= taken
                wanted -= taken

    def view(self, customer: str, at: float) -> tuple[int, int, float | None, int]:
        who = self.customers.get(customer, _Customer())
        live = [lot for lot in who.lots if lot.expires > at and lot.left > 0]
        ready = [lot for lot in live if lot.spendable_from <= at]
        soonest = min((lot.expires for lot in ready), default=None)
        return (
            sum(lot.left for lot in ready),
            sum(lot.left for lot in live if lot.spendable_from > at),
            soonest,
            sum(lot.left for lot in ready if lot.expires == soonest),
        )


CONFIG = GeneratorConfig(customers=250, days=150, seed=11, anonymous_share=0.0)
#: More than the generator's own delays (600 s) plus the shuffle below (250 s).
LATENESS = EngineConfig(allowed_lateness_seconds=900)


def _replay(lines: list[bytes], rules: Path) -> Engine:
    engine = Engine(MemoryProfileStore(), load_rules(rules), config=LATENESS)
    driver = Driver(engine, [])
    for number, line in enumerate(lines, start=1):
        item = decode_event(line, source="oracle", position=number)
        if isinstance(item, PartialEvent):
            item = item.event
        assert not isinstance(item, DeadLetter), item
        driver.apply(item)
    driver.end()
    return engine


def _time(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["occurred_at"]).timestamp()


def test_every_ledger_equals_an_independent_computation_over_the_generated_stream(
    tmp_path: Path,
) -> None:
    (tmp_path / "loyalty.yaml").write_text(PROGRAM, encoding="utf-8")
    lines = list(generate_stream(CONFIG))
    engine = _replay(lines, tmp_path)
    records: dict[str, dict[str, Any]] = {}
    for line in lines:
        record = json.loads(line)
        records.setdefault(record["event_id"], record)  # a redelivery is the same event
    oracle = _Oracle(YAML(typ="safe").load(PROGRAM))
    ordered = sorted(records.values(), key=lambda r: (_time(r), r["event_id"]))
    for record in ordered:
        oracle.apply(record)
    end = max(_time(r) for r in ordered)
    compared = refused = clawed = pending = 0
    for customer in oracle.customers:
        profile = engine.store.get(customer)
        assert profile is not None
        ledger = profile.points
        mine = (0, 0, None, 0) if ledger is None else astuple(points_at(ledger, end))
        assert mine == oracle.view(customer, end), customer
        if ledger is not None:
            who = oracle.customers[customer]
            counts = (ledger.earned, ledger.redeemed, ledger.clawed_back, ledger.shortfall)
            assert (*counts, ledger.refused) == (
                who.earned,
                who.redeemed,
                who.clawed,
                who.shortfall,
                who.refused,
            ), customer
            compared += 1
            refused += ledger.refused
            clawed += ledger.clawed_back
            pending += points_at(ledger, end).pending
    # The stream exercises what the program says: refusals, clawbacks, pending points.
    assert compared > 150
    assert refused > 0
    assert clawed > 0
    assert pending > 0


def test_the_stream_shuffled_within_the_allowed_lateness_gives_the_same_ledgers(
    tmp_path: Path,
) -> None:
    (tmp_path / "loyalty.yaml").write_text(PROGRAM, encoding="utf-8")
    lines = list(generate_stream(CONFIG))
    rng = random.Random(3)
    shuffled = sorted(lines, key=lambda line: _time(json.loads(line)) + rng.uniform(0, 250))
    assert shuffled != lines
    first, second = _replay(lines, tmp_path), _replay(shuffled, tmp_path)
    customers = {json.loads(line)["customer_id"] for line in lines}
    differ = [c for c in customers if _points_of(first, c) != _points_of(second, c)]
    assert differ == []


def _points_of(engine: Engine, customer: str) -> object:
    profile = engine.store.get(customer)
    return None if profile is None else profile.points
