"""``rapport rules test``: the marketers' rule cases (``rules/rule_cases.py``) run through
the engine, each from an empty store, with the one driver loop (``engine/driver.py``).

>>> from rules.loader import DEFAULT_RULES_DIR
>>> results = run_cases(DEFAULT_RULES_DIR)
>>> all(result.passed for result in results), len(results) >= 9
(True, True)
"""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import Engine, EngineConfig
from engine.driver import run
from engine.outputs import Dispatch
from rules.actions import Action
from rules.loader import load_rules
from rules.rule_cases import CaseResult, CaseSpec, load_cases
from schemas.decode import DeadLetter, PartialEvent, convert_event
from schemas.events import Event
from state.stores import MemoryProfileStore

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
    "message",
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
    actions: list[Action] = []
    watched = Dispatch({Action: actions.append})
    run(sorted(events, key=lambda e: e.occurred_at), engine, [watched], case.until.timestamp())
    chosen = [item for item in actions if item.journey_id in case.journeys]
    actual = [_view(item) for item in chosen]
    problems = []
    for index in range(max(len(actual), len(expected))):
        got = actual[index] if index < len(actual) else None
        want = expected[index] if index < len(expected) else None
        if want is None:
            problems.append(f"unexpected action #{index + 1}: {_describe(got)}")
        elif got is None:
            problems.append(f"missing action #{index + 1}: expected {_describe(want)}")
        else:
            message = want.pop("message", None)
            wrong = {k: (v, got[k]) for k, v in want.items() if got[k] != v}
            if message is not None:
                problems.extend(_message_problems(index, got, chosen[index], message))
            if wrong:
                detail = ", ".join(
                    f"{k}: expected {_show(k, v)}, got {_show(k, g)}" for k, (v, g) in wrong.items()
                )
                problems.append(f"action #{index + 1} ({_describe(got)}): {detail}")
    return problems


def _message_problems(index: int, got: dict[str, Any], action: Action, wanted: object) -> list[str]:
    """``message: {part: text}``: each part of the rendered message contains its text."""
    where = f"action #{index + 1} ({_describe(got)})"
    if not isinstance(wanted, dict):
        return [f"{where}: message: expected a mapping of part to text, got {wanted!r}"]
    if action.message is None:
        return [
            f"{where}: message: expected a rendered message, got none ({action.detail or 'not sent'})"
        ]
    problems = []
    for part, text in wanted.items():
        rendered = getattr(action.message, str(part), None) if part != "locale" else None
        if part == "locale":
            if action.message.locale != text:
                problems.append(
                    f"{where}: message locale: expected {text!r}, got {action.message.locale!r}"
                )
        elif not isinstance(rendered, str):
            problems.append(f"{where}: message has no {part!r} part")
        elif str(text) not in rendered:
            problems.append(
                f"{where}: message {part}: expected it to contain {str(text)!r}, got {rendered!r}"
            )
    return problems


def _show(name: str, value: Any) -> str:
    if name == "at" and isinstance(value, float):
        return datetime.fromtimestamp(value).astimezone().isoformat()
    return repr(value)


def _describe(view: dict[str, Any] | None) -> str:
    if view is None:
        return "nothing"
    return ", ".join(f"{k}={_show(k, v)}" for k, v in view.items() if v is not None)


def run_cases(rules_dir: Path) -> list[CaseResult]:
    return [
        CaseResult(where, case.name, run_case(rules_dir, case, f"{where}: {case.name}"))
        for where, case in load_cases(rules_dir)
    ]
