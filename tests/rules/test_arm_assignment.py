"""The holdout and variant assignment is exactly what docs/rules.md says, so an analyst
outside Rapport can reproduce every customer's arm from the guide alone."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rules.journey_moves import assign_arm
from rules.journey_steps import Journey
from state.profile import Profile

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def _documented_arm() -> Any:
    """The guide's own code for the assignment, run as written."""
    text = GUIDE.read_text()
    (code,) = [
        block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "def arm(" in block
    ]
    names: dict[str, Any] = {}
    exec(code, names)
    return names["arm"]


def test_the_guides_recipe_gives_every_customer_the_arm_rapport_gives() -> None:
    arm = _documented_arm()
    none: dict[str, str] = {}
    variants = (("friendly", 50, none), ("urgent", 30, none), ("plain", 20, none))
    journey = Journey(id="cart_recovery", priority=50, steps=(), holdout=0.1, variants=variants)
    for index in range(2000):
        customer = f"c{index:05d}"
        profile = Profile(key=customer, customer_id=customer)
        expected = arm("cart_recovery", customer, 0.1, [(v, w) for v, w, _ in variants])
        assert assign_arm(journey, profile) == expected, customer
    visitor = Profile(key="anon:a1")
    assert assign_arm(journey, visitor) == arm(
        "cart_recovery", "anon:a1", 0.1, [(v, w) for v, w, _ in variants]
    )
