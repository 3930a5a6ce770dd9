"""Journeys reading delivery feedback: a branch on whether the run's own message was
clicked, and an exit on an unsubscribe."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import Engine, EngineConfig
from rules.actions import Action, action_id
from rules.loader import DEFAULT_RULES_DIR, load_rules
from rules.yaml_source import RuleFileError
from state.stores import MemoryProfileStore
from tests.builders import added, at, event

#: Cart recovery whose coupon goes only to customers who clicked the reminder.
_CLICK_BRANCH = """\
id: cart_recovery
priority: 60
trigger: {event: cart.item_added, when: cart_value >= 20}
entity: cart_id
exit_on: [order.placed, cart.cleared]
steps:
  - wait: 1h
  - send: {channel: email, template: cart_reminder, payload: {cart_id: event.cart_id}}
  - wait: 23h
  - branch: {when: not message_clicked, goto: done}
  - send:
      channel: email
      template: cart_coupon
      payload: {cart_id: event.cart_id}
      coupon: {percent: 10, valid_for: 48h}
  - {id: done, exit: true}
"""


def _engine(tmp_path: Path) -> Engine:
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules)
    (rules / "journeys" / "cart_recovery.yaml").write_text(_CLICK_BRANCH, encoding="utf-8")
    return Engine(
        MemoryProfileStore(), load_rules(rules), config=EngineConfig(allowed_lateness_seconds=0)
    )


def _sends(engine: Engine, *events: object) -> list[Action]:
    outputs: list[object] = []
    for item in events:
        outputs += engine.apply(item)  # type: ignore[arg-type]
    outputs += engine.finish(at(days=3).timestamp())
    return [o for o in outputs if isinstance(o, Action) and o.journey_id == "cart_recovery"]


def test_the_coupon_goes_only_to_a_customer_who_clicked_the_reminder(tmp_path: Path) -> None:
    consent = event("consent.updated", when=at(), channel="email", granted=True)
    cart = added("k1", "p1", price=30.0, when=at(0, 1))
    reminder = action_id("cart_recovery", 1, "c1", "k1", cart.event_id)
    clicked = event(
        "message.clicked",
        when=at(0, 3),
        channel="email",
        action_id=reminder,
        journey_id="cart_recovery",
    )
    sends = _sends(_engine(tmp_path / "a"), consent, cart, clicked)
    assert [s.template for s in sends] == ["cart_reminder", "cart_coupon"]
    assert sends[0].action_id == reminder
    quiet = added("k1", "p1", price=30.0, when=at(0, 1), event_id=cart.event_id)
    sends = _sends(_engine(tmp_path / "b"), consent, quiet)
    assert [s.template for s in sends] == ["cart_reminder"]


def test_a_click_on_another_message_does_not_count_for_the_run(tmp_path: Path) -> None:
    consent = event("consent.updated", when=at(), channel="email", granted=True)
    cart = added("k1", "p1", price=30.0, when=at(0, 1))
    newsletter = event(
        "message.clicked", when=at(0, 3), channel="email", action_id="newsletter-c1-1"
    )
    sends = _sends(_engine(tmp_path), consent, cart, newsletter)
    assert [s.template for s in sends] == ["cart_reminder"]


def test_a_tag_condition_cannot_read_the_runs_names(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules)
    tags = rules / "tags.yaml"
    tags.write_text(
        tags.read_text(encoding="utf-8")
        + "\n  - id: clicker\n    when: message_clicked\n    on: [message.clicked]\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleFileError, match="message_clicked"):
        load_rules(rules)
