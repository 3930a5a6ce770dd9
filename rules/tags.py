"""Marketer-defined tags: declared in YAML, kept on the profile, added and removed live.

Two kinds:

* **activity** — "at least N matching events within a window", e.g. ``sneaker_fan`` when a
  customer views sneakers 3 times in 30 days. Counts are kept per day on the profile, so the
  tag also lapses by itself when the window slides past the old events.
* **condition** — a condition on the profile (see ``rules/profile_view.py``) re-checked on
  the listed event kinds and whenever the profile is reviewed.

>>> tags = TagSet.from_specs([TagSpec(id="big_spender", when="net_revenue >= 100",
...                                   on=["order.placed"])])
>>> tags.ids
('big_spender',)
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from rules.durations import parse_duration
from rules.expressions import Condition, ConditionError, compile_condition
from rules.profile_view import SAMPLE_VIEW, profile_view
from schemas.events import EVENT_TYPES, Envelope, Event
from state.changes import ProfileChange
from state.profile import DAY, MAX_TAG_WINDOW_DAYS, MAX_TAGS, Profile
from state.reducers import count_on, drop_days_before

TagId = Annotated[str, StringConstraints(pattern="^[a-z][a-z0-9_]{0,47}$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActivitySpec(_Spec):
    event: str = Field(description="The event kind to count, e.g. product.viewed.")
    where: dict[str, str | int | float | bool | list[str | int | float | bool]] = Field(
        default_factory=dict, description="Property equality filters; a list means any of."
    )
    at_least: int = Field(ge=1, le=10_000)
    within: str = Field(description="Window length, e.g. 30d.")


class TagSpec(_Spec):
    id: TagId
    description: str = ""
    activity: ActivitySpec | None = None
    when: str | None = Field(default=None, description="A condition on the profile.")
    on: list[str] = Field(default_factory=list, description="Event kinds that re-check `when`.")


class TagFile(_Spec):
    tags: list[TagSpec] = Field(default_factory=list)


class TagSpecError(ValueError):
    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        self.loc = tuple(loc)
        super().__init__(message)


def _event_class(kind: str, loc: Sequence[str | int]) -> type[Envelope]:
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise TagSpecError(
            loc, f"unknown event type {kind!r}; expected one of {sorted(EVENT_TYPES)}"
        )
    return cls


@dataclass(frozen=True)
class ActivityTag:
    id: str
    event_class: type[Envelope]
    where: tuple[tuple[str, frozenset[Any]], ...]
    at_least: int
    within_days: int

    def matches(self, event: Event) -> bool:
        if not self.where:
            return True
        props = event.properties
        for name, allowed in self.where:  # noqa: SIM110 - a loop is cheaper than all() here
            if getattr(props, name, None) not in allowed:
                return False
        return True

    def count(self, profile: Profile) -> int:
        """Matching events in the window ending at the profile's clock.

        The engine prunes a tag's day buckets whenever the profile's day changes, so
        every bucket left is inside the window and the count is their sum.
        """
        days = profile.tag_activity.get(self.id)
        return sum(days.values()) if days else 0

    def record(self, profile: Profile, ts: float) -> bool:
        """Count one matching event; False when it is too old for the window."""
        day = int(ts // DAY)
        if day <= int(profile.as_of // DAY) - self.within_days:
            return False
        days = profile.tag_activity.get(self.id)
        if days is None:
            profile.tag_activity[self.id] = {day: 1}
        else:
            count_on(days, day)
        return True

    def prune(self, profile: Profile) -> None:
        days = profile.tag_activity.get(self.id)
        if days is None:
            return
        if not drop_days_before(days, int(profile.as_of // DAY) - self.within_days + 1):
            del profile.tag_activity[self.id]

    def lapses_at(self, profile: Profile) -> float | None:
        """When the count falls below ``at_least`` if nothing else happens."""
        days = profile.tag_activity.get(self.id, {})
        running = 0
        for day in sorted(days, reverse=True):
            running += days[day]
            if running >= self.at_least:
                return (day + self.within_days) * DAY
        return None


@dataclass(frozen=True)
class ConditionTag:
    id: str
    source: str
    condition: Condition
    on: frozenset[type[Envelope]]


@dataclass
class TagSet:
    """Compiled tag definitions, indexed by the event kinds that affect them."""

    activity: tuple[ActivityTag, ...] = ()
    conditions: tuple[ConditionTag, ...] = ()
    _by_event: dict[type[Envelope], tuple[tuple[ActivityTag, ...], tuple[ConditionTag, ...]]] = (
        field(default_factory=dict)
    )

    def __post_init__(self) -> None:
        for cls in EVENT_TYPES.values():
            acts = tuple(tag for tag in self.activity if tag.event_class is cls)
            conds = tuple(tag for tag in self.conditions if cls in tag.on)
            if acts or conds:
                self._by_event[cls] = (acts, conds)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(sorted([t.id for t in self.activity] + [t.id for t in self.conditions]))

    @classmethod
    def from_specs(cls, specs: Iterable[TagSpec]) -> TagSet:
        """Compile specs; raises ``TagSpecError`` naming the spec index and field."""
        activity: list[ActivityTag] = []
        conditions: list[ConditionTag] = []
        seen: set[str] = set()
        for index, spec in enumerate(specs):
            loc: list[str | int] = ["tags", index]
            if spec.id in seen:
                raise TagSpecError([*loc, "id"], f"duplicate tag id {spec.id!r}")
            seen.add(spec.id)
            if (spec.activity is None) == (spec.when is None):
                raise TagSpecError(loc, "a tag needs exactly one of `activity` or `when`")
            if spec.activity is not None:
                activity.append(_compile_activity(spec.id, spec.activity, [*loc, "activity"]))
            else:
                conditions.append(_compile_condition_tag(spec, loc))
        if len(seen) > MAX_TAGS:
            raise TagSpecError(["tags"], f"at most {MAX_TAGS} tags can be defined")
        return cls(tuple(activity), tuple(conditions))

    def apply(self, profile: Profile, event: Event, ts: float, cause: str) -> list[ProfileChange]:
        """Record matching activity and re-check the tags this event kind affects."""
        entry = self._by_event.get(type(event))
        if entry is None:
            return []
        acts, conds = entry
        changes: list[ProfileChange] = []
        for tag in acts:
            # Activity only adds: a tag the profile has stays until a review finds it lapsed.
            if (
                tag.matches(event)
                and tag.record(profile, ts)
                and tag.id not in profile.tags
                and tag.count(profile) >= tag.at_least
            ):
                self._set(profile, tag.id, True, cause, changes)
        if conds:
            view = profile_view(profile)
            for cond in conds:
                self._set(profile, cond.id, cond.condition(view), cause, changes)
        return changes

    def advance(self, profile: Profile, cause: str) -> list[ProfileChange]:
        """Re-check every tag: time has passed (the profile's clock moved)."""
        changes: list[ProfileChange] = []
        for tag in self.activity:
            tag.prune(profile)
            self._set(profile, tag.id, tag.count(profile) >= tag.at_least, cause, changes)
        if self.conditions:
            view = profile_view(profile)
            for cond in self.conditions:
                self._set(profile, cond.id, cond.condition(view), cause, changes)
        return changes

    def prune(self, profile: Profile) -> None:
        for tag in self.activity:
            tag.prune(profile)

    def next_review(self, profile: Profile) -> float | None:
        if not profile.tags or not self.activity:
            return None
        times = [
            t
            for tag in self.activity
            if tag.id in profile.tags
            if (t := tag.lapses_at(profile)) is not None
        ]
        return min(times) if times else None

    @staticmethod
    def _set(
        profile: Profile, tag_id: str, wanted: bool, cause: str, changes: list[ProfileChange]
    ) -> None:
        has = tag_id in profile.tags
        if wanted and not has:
            insort(profile.tags, tag_id)
            changes.append(
                ProfileChange.make("tag_added", profile.key, None, tag_id, profile.as_of, cause)
            )
        elif has and not wanted:
            profile.tags.remove(tag_id)
            changes.append(
                ProfileChange.make("tag_removed", profile.key, tag_id, None, profile.as_of, cause)
            )


def _compile_activity(tag_id: str, spec: ActivitySpec, loc: list[str | int]) -> ActivityTag:
    cls = _event_class(spec.event, [*loc, "event"])
    props_type = msgspec.inspect.type_info(cls).fields  # type: ignore[attr-defined]
    props_cls = next(f.type.cls for f in props_type if f.name == "properties")
    known = {f.name for f in msgspec.structs.fields(props_cls)}
    where = []
    for name, value in sorted(spec.where.items()):
        if name not in known:
            raise TagSpecError(
                [*loc, "where", name],
                f"{spec.event} has no property {name!r}; it has {sorted(known)}",
            )
        values = value if isinstance(value, list) else [value]
        where.append((name, frozenset(values)))
    try:
        seconds = parse_duration(spec.within)
    except ValueError as error:
        raise TagSpecError([*loc, "within"], str(error)) from error
    days = int(seconds // DAY)
    if seconds % DAY or not 1 <= days <= MAX_TAG_WINDOW_DAYS:
        raise TagSpecError(
            [*loc, "within"], f"window must be whole days between 1d and {MAX_TAG_WINDOW_DAYS}d"
        )
    return ActivityTag(tag_id, cls, tuple(where), spec.at_least, days)


def _compile_condition_tag(spec: TagSpec, loc: list[str | int]) -> ConditionTag:
    assert spec.when is not None
    if not spec.on:
        raise TagSpecError(
            [*loc, "on"], "a `when` tag needs `on`: the event kinds that re-check it"
        )
    on = frozenset(_event_class(kind, [*loc, "on", i]) for i, kind in enumerate(spec.on))
    try:
        condition = compile_condition(spec.when, SAMPLE_VIEW, f"tag {spec.id}", [*loc, "when"])
    except ConditionError as error:
        raise TagSpecError([*loc, "when"], str(error)) from error
    return ConditionTag(spec.id, spec.when, condition, on)
