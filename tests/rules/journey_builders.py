"""Rule directories and engines for journey tests: write only the YAML that matters."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine import Engine, EngineConfig
from rules.actions import Action, JourneyMilestone
from rules.loader import load_rules
from schemas.events import Event
from state.stores import MemoryProfileStore
from tests.builders import IMMEDIATE, event

CART_RECOVERY = """
id: cart_recovery
trigger: {event: cart.item_added, when: "cart_value >= 20"}
entity: cart_id
exit_on: [order.placed, cart.cleared]
reentry: {cooldown: 7d}
steps:
  - wait: 1h
  - send: {channel: email, template: cart_reminder, payload: {cart: event.cart_id}}
  - wait: 23h
  - send: {channel: email, template: cart_coupon, coupon: {percent: 10, valid_for: 48h}}
goal: {event: order.placed, within: 72h}
"""

OPEN_POLICIES = """
channels:
  email: {templates: [cart_reminder, cart_coupon, hello]}
"""


def rules_dir(
    root: Path,
    journeys: Sequence[str] = (CART_RECOVERY,),
    policies: str = OPEN_POLICIES,
    tags: str | None = None,
) -> Path:
    """A rules directory with these journey files, policies and (optionally) tags."""
    directory = root / "rules"
    (directory / "journeys").mkdir(parents=True, exist_ok=True)
    for index, text in enumerate(journeys):
        (directory / "journeys" / f"journey_{index}.yaml").write_text(text)
    (directory / "policies.yaml").write_text(policies)
    if tags is not None:
        (directory / "tags.yaml").write_text(tags)
    return directory


def journey_engine(directory: Path, config: EngineConfig = IMMEDIATE) -> Engine:
    return Engine(MemoryProfileStore(), load_rules(directory), config=config)


def consent(channel: str = "email", granted: bool = True, **kw: object) -> Event:
    return event("consent.updated", channel=channel, granted=granted, **kw)  # type: ignore[arg-type]


def sends(outputs: Sequence[object], status: str | None = "sent") -> list[Action]:
    return [
        item
        for item in outputs
        if isinstance(item, Action) and (status is None or item.status == status)
    ]


def milestones(outputs: Sequence[object], kind: str) -> list[JourneyMilestone]:
    return [item for item in outputs if isinstance(item, JourneyMilestone) and item.kind == kind]
