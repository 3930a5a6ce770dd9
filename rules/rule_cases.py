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
only the fields it cares about.

>>> from rules.loader import DEFAULT_RULES_DIR
>>> results = run_cases(DEFAULT_RULES_DIR)
>>> all(result.passed for result in results), len(results) >= 9
(True, True)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rules.actions import Action
from rules.engine import Engine, EngineConfig
from rules.loader import load_rules
from rules.yaml_source import RuleFileError, load_yaml_file, located_errors
from schemas.decode import DeadLetter, PartialEvent, convert_event
from schemas.events import Event
from state.stores import MemoryProfileStore

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
        "entity, kind, coupon (the code), coupon_pool.",
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


_ENVELOPE = ("at", "type", "customer", "anonymous", "event_id")
_FIELDS = (
    "journey",
    "template",
    "channel",
    "status",
    "reason",
    "at",
    "entity",
    "kind",
    "coupon",
    "coupon_pool",
)


def _event(spec: dict[str, Any], ids: itertools.count[int], where: str) -> Event:
    record: dict[str, Any] = {
        "type": spec.get("type"),
        "event_id": spec.get("event_id", f"case-{next(ids)}"),
        "occurred_at": spec.get("at"),
        "properties": {k: v for k, v in spec.items() if k not in _ENVELOPE},
    }
    customer, anonymous = spec.get("customer", "c1"), spec.get("anonymous")
    if customer is not None:
        record["customer_id"] = customer
    if anonymous is not None:
        record["anonymous_id"] = anonymous
    if isinstance(record["occurred_at"], datetime):
        record["occurred_at"] = record["occurred_at"].isoformat()
    decoded = convert_event(record, b"", source=where, position=0)
    if isinstance(decoded, DeadLetter):
        raise ValueError(f"{where}: not a valid event: {decoded.detail}")
    if isinstance(decoded, PartialEvent):
        raise ValueError(f"{where}: not a valid event: {decoded.dropped.detail}")
    return decoded


def _view(action: Action) -> dict[str, Any]:
    return {
        "journey": action.journey_id,
        "template": action.template,
        "channel": action.channel,
        "status": action.status,
        "reason": action.reason,
        "at": action.at,
        "entity": action.entity,
        "kind": action.kind,
        "coupon": action.coupon.code if action.coupon else None,
        "coupon_pool": action.coupon.pool if action.coupon else None,
    }


def _expected(spec: dict[str, Any]) -> dict[str, Any]:
    wanted = dict(spec)
    unknown = set(wanted) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown expectation field(s) {sorted(unknown)}; use {list(_FIELDS)}")
    if "at" in wanted:
        moment = wanted["at"]
        wanted["at"] = (
            moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))
        ).timestamp()
    return wanted


def run_case(rules_dir: Path, case: CaseSpec, where: str) -> list[str]:
    """Problems found running one case (empty when it passes)."""
    engine = Engine(
        MemoryProfileStore(),
        load_rules(rules_dir),
        config=EngineConfig(allowed_lateness_seconds=0.0, dedup_window_seconds=1e12),
    )
    ids = itertools.count(1)
    try:
        events = [_event(spec, ids, f"{where} event {n}") for n, spec in enumerate(case.events, 1)]
        expected = [_expected(spec) for spec in case.expect]
    except ValueError as error:
        return [str(error)]
    outputs: list[object] = []
    for item in sorted(events, key=lambda e: e.occurred_at):
        outputs += engine.process(item)
    outputs += engine.advance(case.until.timestamp())
    actual = [
        _view(item)
        for item in outputs
        if isinstance(item, Action) and item.journey_id in case.journeys
    ]
    problems = []
    for index in range(max(len(actual), len(expected))):
        got = actual[index] if index < len(actual) else None
        want = expected[index] if index < len(expected) else None
        if want is None:
            problems.append(f"unexpected action #{index + 1}: {_describe(got)}")
        elif got is None:
            problems.append(f"missing action #{index + 1}: expected {_describe(want)}")
        else:
            wrong = {k: (v, got[k]) for k, v in want.items() if got[k] != v}
            if wrong:
                detail = ", ".join(
                    f"{k}: expected {_show(k, v)}, got {_show(k, g)}" for k, (v, g) in wrong.items()
                )
                problems.append(f"action #{index + 1} ({_describe(got)}): {detail}")
    return problems


def _show(name: str, value: Any) -> str:
    if name == "at" and isinstance(value, float):
        return datetime.fromtimestamp(value).astimezone().isoformat()
    return repr(value)


def _describe(view: dict[str, Any] | None) -> str:
    if view is None:
        return "nothing"
    return ", ".join(f"{k}={_show(k, v)}" for k, v in view.items() if v is not None)


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


def run_cases(rules_dir: Path) -> list[CaseResult]:
    return [
        CaseResult(where, case.name, run_case(rules_dir, case, f"{where}: {case.name}"))
        for where, case in load_cases(rules_dir)
    ]
