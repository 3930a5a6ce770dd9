"""A compiled journey: its triggers and steps as the runtime executes them
(``rules/journey_runtime.py``), made by ``rules/journey_compiler.py``."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rules.durations import parse_duration
from rules.expressions import Condition
from rules.journey_spec import (
    CouponSpec,
)
from schemas.events import Envelope


class JourneyError(ValueError):
    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        self.loc = tuple(loc)
        super().__init__(message)


# --- compiled steps ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    seconds: float | None = None
    #: (hour, minute) of the customer's local time to wait for.
    until: tuple[int, int] | None = None
    #: A trigger property whose value picks the duration, the durations, and the default.
    per: str | None = None
    durations: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Send:
    channel: str
    template: str
    #: payload name -> profile name, or ``event.<property>`` captured at entry.
    payload: tuple[tuple[str, str], ...]
    coupon: CouponSpec | None
    coupon_valid_seconds: float = 0.0


@dataclass(frozen=True)
class Branch:
    condition: Condition
    source: str
    goto: int
    otherwise: int


@dataclass(frozen=True)
class SetTag:
    tag: str
    present: bool


@dataclass(frozen=True)
class Emit:
    event: str
    payload: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class AwardPoints:
    points: int


@dataclass(frozen=True)
class End:
    pass


CompiledStep = Wait | Send | Branch | SetTag | Emit | AwardPoints | End


@dataclass(frozen=True)
class Journey:
    id: str
    priority: int
    steps: tuple[CompiledStep, ...]
    trigger_event: type[Envelope] | None = None
    trigger_change: tuple[str, str | None, str | None] | None = None
    inactivity_seconds: float | None = None
    #: (profile date trait, hour, minute) for yearly triggers such as birthdays.
    anniversary: tuple[str, int, int] | None = None
    #: (window in seconds, at least this many points) for points-expiry triggers.
    points_expiring: tuple[float, int] | None = None
    when: Condition | None = None
    #: More event kinds that start the journey (``also_on``), each with its condition.
    also_on: tuple[tuple[type[Envelope], Condition | None], ...] = ()
    entity: str | None = None
    #: Event kinds that end a run, each with the condition it must meet (or None).
    exit_on: tuple[tuple[type[Envelope], Condition | None], ...] = ()
    cooldown_seconds: float | None = None
    max_entries: int | None = None
    #: A finished entity (its run completed) may start the journey again.
    same_entity: bool = False
    on_cap: str = "defer"
    holdout: float = 0.0
    #: (variant id, weight, template replacements)
    variants: tuple[tuple[str, int, Mapping[str, str]], ...] = ()
    goal_event: type[Envelope] | None = None
    goal_seconds: float = 0.0
    #: Trigger event properties that sends and emits read, captured when a run starts.
    captured: tuple[str, ...] = ()

    def conditions(self) -> list[Condition]:
        """Every condition of the journey: its trigger's, its exits', its branches'."""
        found = [] if self.when is None else [self.when]
        found += [condition for _, condition in self.also_on if condition is not None]
        found += [condition for _, condition in self.exit_on if condition is not None]
        found += [step.condition for step in self.steps if isinstance(step, Branch)]
        return found


def unknown_name(what: str, value: str, known: Mapping[str, Any] | Sequence[str]) -> str:
    names = sorted(known)
    hint = difflib.get_close_matches(value, names, n=1)
    suggestion = f"did you mean {hint[0]!r}? " if hint else ""
    return f"unknown {what} {value!r}; {suggestion}known: {', '.join(names)}"


def checked_duration(text: str, loc: Sequence[str | int]) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise JourneyError(loc, str(error)) from error
