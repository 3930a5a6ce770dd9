"""Ticket routing on a generated stream, under the shipped routing.yaml, against an
independent computation: the stream replayed in plain Python (orders, refunds, open
tickets, spend tiers), the categories matched by hand from the YAML's keywords, and the
shipped rules written again as Python functions. None of ``rules/routing.py``'s or the
profile's code; the sentiment scorer is shared, since routing, not scoring, is on trial.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from engine import Engine, EngineConfig
from engine.driver import Driver
from rules.loader import load_rules
from rules.routing import TicketRouted
from schemas.decode import DeadLetter, PartialEvent, decode_event
from sentiment import score_text
from state.stores import MemoryProfileStore
from streams.generator import GeneratorConfig, generate_stream

ROOT = Path(__file__).resolve().parents[2]
CONFIG = GeneratorConfig(customers=900, days=120, seed=17, anonymous_share=0.0)
LEVELS = ("low", "normal", "high", "urgent")


@dataclass
class Customer:
    totals: dict[str, float] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    refunded: float = 0.0
    open_tickets: set[str] = field(default_factory=set)
    seen_tickets: set[str] = field(default_factory=set)

    def net(self) -> float:
        kept = sum(t for o, t in self.totals.items() if o not in self.cancelled)
        return kept - self.refunded


def _tier(net: float, levels: list[dict[str, Any]]) -> str:
    reached = [str(level["name"]) for level in levels if net >= level["min_spend"]]
    return reached[-1]


def _category(
    text: str, topic: str | None, categories: list[dict[str, Any]]
) -> tuple[str, str | None]:
    lowered = text[:2000].lower()  # the opening is what routing reads
    for category in categories:
        words = category["keywords"].get("zh", []) + category["keywords"].get("en", [])
        hits = []
        for word in words:
            word = word.lower()
            start = lowered.find(word)
            while start != -1:
                before = lowered[start - 1] if start else " "
                latin = word[0].isascii() and word[0].isalnum()
                if not (latin and before.isascii() and before.isalnum()):
                    hits.append((start, -len(word), word))
                    break
                start = lowered.find(word, start + 1)
        if hits:
            return category["id"], min(hits)[2]
    if topic is not None and topic in {c["id"] for c in categories}:
        return topic, None
    return "general", None


def _rules(
    ticket: dict[str, Any],
) -> list[tuple[str, Callable[[], bool], str | None, Callable[[str], str] | None]]:
    s, tier = ticket["sentiment"], ticket["tier"]

    def negative(bound: float) -> bool:
        return s is not None and s <= bound

    def at_least(level: str) -> Callable[[str], str]:
        return lambda p: max(p, level, key=LEVELS.index)

    return [
        ("valued_and_upset_jumps_a_level", lambda: tier in ("gold", "platinum") and negative(-0.25), None,
         lambda p: LEVELS[min(3, LEVELS.index(p) + 1)]),
        ("very_negative_is_at_least_high", lambda: negative(-0.6), None, at_least("high")),
        ("platinum_desk", lambda: tier == "platinum" or ticket["net"] >= 3000, "vip", None),
        ("complaints_desk", lambda: ticket["is_complaint"] or negative(-0.6), "complaints", None),
        ("repeat_contact_is_high", lambda: ticket["open"] >= 2, None, at_least("high")),
        ("refunds_desk", lambda: ticket["category"] == "refund", "refunds", None),
        ("logistics_desk", lambda: ticket["category"] == "delivery", "logistics", None),
        ("quality_desk", lambda: ticket["category"] == "product", "quality", None),
        ("billing_desk", lambda: ticket["category"] == "billing", "billing", None),
        ("accounts_desk", lambda: ticket["category"] == "account", "accounts", None),
    ]  # fmt: skip


def _expected(lines: list[bytes]) -> dict[str, tuple[Any, ...]]:
    yaml = YAML(typ="safe")
    routing = yaml.load((ROOT / "rules" / "routing.yaml").read_text())
    levels = yaml.load((ROOT / "config" / "defaults.yaml").read_text())["profile"]["tiers"][
        "levels"
    ]
    assert [r["id"] for r in routing["rules"]] == [
        r[0] for r in _rules({"sentiment": None, "tier": ""})
    ]
    records = sorted(
        (json.loads(line) for line in lines), key=lambda r: (r["occurred_at"], r["event_id"])
    )
    customers: dict[str, Customer] = {}
    decisions: dict[str, tuple[Any, ...]] = {}
    for record in records:
        who = customers.setdefault(record.get("customer_id") or "", Customer())
        kind, props = record["type"], record["properties"]
        if kind == "order.placed":
            who.totals.setdefault(props["order_id"], float(props["total"]))
        elif kind == "order.cancelled":
            who.cancelled.add(props["order_id"])
        elif kind == "order.refunded":
            who.refunded += float(props["amount"])
        elif kind == "support.ticket_resolved":
            who.open_tickets.discard(props["ticket_id"])
        elif kind == "support.ticket_opened" and props["ticket_id"] not in who.seen_tickets:
            text = "\n".join(p for p in (props.get("subject"), props.get("body")) if p)
            found = score_text(text, props.get("language")) if text else None
            category, keyword = _category(text, props.get("topic"), routing["categories"])
            net = round(who.net(), 2)
            ticket = {
                "sentiment": None if found is None else found.score,
                "tier": _tier(net, levels),
                "net": net,
                "is_complaint": props.get("is_complaint", False),
                "open": len(who.open_tickets),
                "category": category,
            }
            queue = queue_rule = priority_rule = None
            priority = props.get("priority", "normal")
            for rule_id, holds, to_queue, to_priority in _rules(ticket):
                wants_queue = queue is None and to_queue is not None
                wants_priority = priority_rule is None and to_priority is not None
                if (wants_queue or wants_priority) and holds():
                    if wants_queue:
                        queue, queue_rule = to_queue, rule_id
                    if wants_priority and to_priority is not None:
                        priority, priority_rule = to_priority(priority), rule_id
            decisions[props["ticket_id"]] = (
                category,
                keyword,
                queue or "general",
                queue_rule or "default",
                priority,
                priority_rule,
            )
            who.seen_tickets.add(props["ticket_id"])
            who.open_tickets.add(props["ticket_id"])
    return decisions


def test_routing_decisions_on_a_generated_stream_equal_an_independent_computation() -> None:
    lines = list(generate_stream(CONFIG))
    routed: list[TicketRouted] = []

    class Collect:
        def write(self, output: object) -> None:
            if isinstance(output, TicketRouted):
                routed.append(output)

        def flush(self) -> None:
            return None

    engine = Engine(
        MemoryProfileStore(),
        load_rules(ROOT / "rules"),
        config=EngineConfig(allowed_lateness_seconds=900),
    )
    driver = Driver(engine, [Collect()])
    for number, line in enumerate(lines, start=1):
        item = decode_event(line, source="oracle", position=number)
        if isinstance(item, PartialEvent):
            item = item.event
        if not isinstance(item, DeadLetter):
            driver.apply(item)
    driver.end()
    ours = {
        d.ticket_id: (d.category, d.keyword, d.queue, d.queue_rule, d.priority, d.priority_rule)
        for d in routed
    }
    expected = _expected(lines)
    assert len(expected) > 500
    mismatched = {t: (ours.get(t), want) for t, want in expected.items() if ours.get(t) != want}
    assert not mismatched, list(mismatched.items())[:5]
    assert set(ours) == set(expected)
    # The stream exercises the rules: every queue, and priorities moved for three reasons.
    assert {d.queue for d in routed} >= {
        "complaints",
        "refunds",
        "logistics",
        "quality",
        "accounts",
    }
    assert {d.priority_rule for d in routed} >= {
        "very_negative_is_at_least_high",
        "repeat_contact_is_high",
        None,
    }
