"""Rule tests marketers write: given these events, expect these actions (and nothing else).

Cases live next to the rules, in ``cases/*.yaml``; ``rapport rules test`` runs them::

    cases:
      - name: reminder an hour after the cart is left
        events:
          - {at: "2026-03-02T10:00:00Z", type: consent.updated, channel: email, granted: true}
          - {at: "2026-03-02T10:05:00Z", type: cart.item_added, cart_id: k1, product_id: p1, price: 30}
        until: "2026-03-03T12:00:00Z"
        journeys: [cart_recovery]
        expect:
          - {journey: cart_recovery, template: cart_reminder, status: sent, at: "2026-03-02T11:05:00Z"}
          - {journey: cart_recovery, template: cart_coupon, status: sent}

Every action of the listed journeys must be expected, in time order; an expectation names
only the fields it cares about. This module reads the case files; ``streams/rule_tests.py``
runs them through the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rules.yaml_source import RuleFileError, load_yaml_file, located_errors

CASES_DIR = "cases"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseSpec(_Spec):
    name: str
    events: list[dict[str, Any]] = Field(
        description="Events as {at, type, customer?, anonymous?, ...properties}."
    )
    until: datetime = Field(description="Run the clock to this moment.")
    journeys: list[str] = Field(description="Journeys whose actions the case checks.")
    expect: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Expected actions: journey, template, channel, status, reason, at, "
        "entity, kind, coupon (the code), coupon_pool, and message: {part: text the "
        "rendered part contains, or locale: the locale chosen}.",
    )


class CaseFile(_Spec):
    cases: list[CaseSpec]


@dataclass
class CaseResult:
    file: str
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def load_cases(rules_dir: Path) -> list[tuple[str, CaseSpec]]:
    """Every case under ``rules_dir/cases``; raise ``RuleFileError`` on a malformed file."""
    loaded: list[tuple[str, CaseSpec]] = []
    problems: list[str] = []
    for path in sorted((rules_dir / CASES_DIR).glob("*.yaml")):
        doc = load_yaml_file(path)
        try:
            spec = CaseFile.model_validate(_plain(doc.data) or {})
        except ValidationError as error:
            problems.extend(located_errors(doc, error))
            continue
        loaded.extend((str(path), case) for case in spec.cases)
    if problems:
        raise RuleFileError(problems)
    return loaded


def _plain(data: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists (pydantic keeps dict fields as-is)."""
    return msgspec.to_builtins(data, builtin_types=(datetime,)) if data is not None else None
