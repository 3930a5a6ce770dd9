"""Coupon redemptions on the generated stream, under the shipped rules, against an
independent matching: plain Python over the sends Rapport put out and the orders in the
stream, none of ``rules/attribution.py``'s code."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import Engine, EngineConfig
from engine.driver import Driver
from rules.actions import Action, JourneyMilestone
from rules.journey_report import JourneyReport
from rules.loader import load_rules
from schemas.decode import DeadLetter, PartialEvent, decode_event
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig, generate_stream

SHIPPED = Path(__file__).resolve().parents[2] / "rules"
CONFIG = GeneratorConfig(customers=600, days=60, seed=5, anonymous_share=0.0)


class _Outputs:
    def __init__(self) -> None:
        self.items: list[object] = []

    def write(self, output: object) -> None:
        self.items.append(output)

    def flush(self) -> None:
        return None


def test_every_redemption_matches_a_send_of_that_code_to_that_customer_before_the_order() -> None:
    lines = list(generate_stream(CONFIG))
    outputs, report = _Outputs(), JourneyReport()
    engine = Engine(
        MemoryProfileStore(),
        load_rules(SHIPPED),
        config=EngineConfig(allowed_lateness_seconds=900),
    )
    driver = Driver(engine, [outputs, report])
    for number, line in enumerate(lines, start=1):
        item = decode_event(line, source="oracle", position=number)
        if isinstance(item, PartialEvent):
            item = item.event
        if not isinstance(item, DeadLetter):
            driver.apply(item)
    driver.end()

    # The oracle: each customer's coupons as sent, and the orders in event time.
    sent: dict[str, list[Action]] = {}
    for output in outputs.items:
        if isinstance(output, Action) and output.status == "sent" and output.coupon is not None:
            sent.setdefault(output.profile_key, []).append(output)
    orders: dict[str, dict[str, Any]] = {}
    for line in lines:
        record = json.loads(line)
        if record.get("type") == "order.placed" and record["properties"].get("coupon"):
            orders.setdefault(record["event_id"], record)
    expected: dict[str, tuple[str, str, str, float, float]] = {}
    used: set[str] = set()
    for record in sorted(orders.values(), key=lambda r: (_time(r), r["event_id"])):
        props, when = record["properties"], _time(record)
        code = props["coupon"].strip().upper()
        for action in sorted(sent.get(record["customer_id"], []), key=lambda a: a.at):
            assert action.coupon is not None
            live = action.coupon.valid_until + 30 * 86_400 >= when  # then it is forgotten
            if (
                action.action_id not in used
                and action.at <= when
                and live
                and (action.coupon.code == code)
            ):
                used.add(action.action_id)
                expected[record["event_id"]] = (
                    action.action_id,
                    action.journey_id,
                    action.arm,
                    props["total"],
                    props["discount"],
                )
                break

    got = {
        m.cause: (m.action_id, m.journey_id, m.arm, m.value, m.discount)
        for m in outputs.items
        if isinstance(m, JourneyMilestone) and m.kind == "coupon_redeemed"
    }
    assert got == expected
    # The generator's coupon uses do reach the shipped cart recovery's sends.
    assert len(got) > 5
    (row,) = [r for r in report.rows() if r["journey"] == "cart_recovery"]
    coupons = row["coupons"]
    assert isinstance(coupons, dict)
    assert coupons["redeemed"] == len(got)
    assert coupons["discount"] == round(sum(v[4] or 0.0 for v in got.values()), 2)


def _time(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["occurred_at"]).timestamp()
