"""Compiled journeys and policies: what the runtime executes, checked once at load time.

``compile_journey`` turns a validated ``JourneySpec`` into a ``Journey`` or raises
``JourneyError`` naming the field (as a path into the file) and what is wrong.

>>> from rules.journey_spec import JourneySpec
>>> spec = JourneySpec.model_validate({"id": "j", "trigger": {"event": "order.placed",
...     "when": "event.total >= 100"}, "steps": [{"tag": "vip_buyer"}]})
>>> journey = compile_journey(spec, Policies.default(), defined_tags=frozenset())
>>> journey.trigger_event.__name__, len(journey.steps)
('OrderPlaced', 1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from rules.event_properties import properties_of
from rules.expressions import Condition, ConditionError, compile_condition
from rules.journey_names import RUN_NAMES
from rules.journey_spec import (
    AnniversaryTrigger,
    BranchStep,
    ChangeTrigger,
    EmitStep,
    EventTrigger,
    ExitStep,
    InactivityTrigger,
    JourneySpec,
    PointsExpiringTrigger,
    PointsStep,
    SendStep,
    TagStep,
    UntagStep,
    WaitPer,
    WaitStep,
)
from rules.journey_steps import (
    AwardPoints,
    Branch,
    CompiledStep,
    Emit,
    End,
    Journey,
    JourneyError,
    Send,
    SetTag,
    Wait,
    checked_duration,
    unknown_name,
)
from rules.policy_compiler import Policies
from rules.profile_view import PROFILE_FIELDS, SAMPLE_VIEW
from rules.time_triggers import POINTS_EXPIRING_FIELDS
from schemas.events import EVENT_TYPES, Envelope


def _event_class(kind: str, loc: Sequence[str | int]) -> type[Envelope]:
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise JourneyError(loc, unknown_name("event type", kind, EVENT_TYPES))
    return cls


def _names_for(trigger_event: type[Envelope] | None, run_names: bool = False) -> dict[str, Any]:
    names = dict(SAMPLE_VIEW)
    if run_names:  # a branch also sees what became of the run's own messages
        names.update(dict.fromkeys(RUN_NAMES, True))
    if trigger_event is not None:
        names["event"] = SimpleNamespace(**properties_of(trigger_event))
    return names


def _condition(
    source: str,
    trigger_event: type[Envelope] | None,
    loc: Sequence[str | int],
    journey_id: str,
    run_names: bool = False,
) -> Condition:
    if "event." in source or source.startswith("event"):
        if trigger_event is None:
            raise JourneyError(loc, "`event` is only available with an event trigger")
        known = properties_of(trigger_event)
        for name in _event_names(source):
            if name not in known:
                raise JourneyError(
                    loc,
                    f"{_kind(trigger_event)} has no property {name!r}; it has {sorted(known)}",
                )
    try:
        rule = f"{journey_id}:{'.'.join(map(str, loc))}"
        return compile_condition(source, _names_for(trigger_event, run_names), rule, loc)
    except ConditionError as error:
        raise JourneyError(loc, str(error)) from error


def _event_names(source: str) -> list[str]:
    import ast

    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        return []
    return [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "event"
    ]


def _kind(cls: type[Envelope]) -> str:
    return next(kind for kind, known in EVENT_TYPES.items() if known is cls)


def _payload(
    payload: Mapping[str, str],
    trigger_event: type[Envelope] | None,
    loc: Sequence[str | int],
    points_trigger: bool = False,
) -> tuple[tuple[str, str], ...]:
    known_event = properties_of(trigger_event) if trigger_event is not None else {}
    if points_trigger:
        known_event = dict(POINTS_EXPIRING_FIELDS)
    what = _kind(trigger_event) if trigger_event is not None else "a points-expiry trigger"
    for name, source in payload.items():
        if source.startswith("event."):
            prop = source.removeprefix("event.")
            if trigger_event is None and not points_trigger:
                raise JourneyError([*loc, name], "`event.` fields need an event trigger")
            if prop not in known_event:
                raise JourneyError(
                    [*loc, name],
                    f"{what} has no property {prop!r}; it has {sorted(known_event)}",
                )
        elif source not in PROFILE_FIELDS:
            raise JourneyError([*loc, name], unknown_name("profile name", source, PROFILE_FIELDS))
    return tuple(sorted(payload.items()))


def compile_journey(spec: JourneySpec, policies: Policies, defined_tags: frozenset[str]) -> Journey:
    """Check every reference in ``spec`` and build the runnable journey."""
    trigger = spec.trigger
    trigger_event: type[Envelope] | None = None
    kwargs: dict[str, Any] = {}
    if isinstance(trigger, EventTrigger):
        trigger_event = _event_class(trigger.event, ["trigger", "event"])
        kwargs["trigger_event"] = trigger_event
    elif isinstance(trigger, ChangeTrigger):
        kwargs["trigger_change"] = (trigger.change, trigger.to, trigger.tag)
        if trigger.change.startswith("tag_") and trigger.tag is None:
            raise JourneyError(["trigger", "tag"], f"{trigger.change} needs `tag`: which tag")
    elif isinstance(trigger, InactivityTrigger):
        kwargs["inactivity_seconds"] = checked_duration(
            trigger.inactivity, ["trigger", "inactivity"]
        )
    elif isinstance(trigger, AnniversaryTrigger):
        hour, minute = trigger.at.split(":")
        kwargs["anniversary"] = (trigger.anniversary, int(hour), int(minute))
    elif isinstance(trigger, PointsExpiringTrigger):
        within = checked_duration(trigger.points_expiring, ["trigger", "points_expiring"])
        kwargs["points_expiring"] = (within, trigger.at_least)
    if trigger.when is not None:
        kwargs["when"] = _condition(trigger.when, trigger_event, ["trigger", "when"], spec.id)
    also_on = []
    for index, extra in enumerate(spec.also_on):
        if trigger_event is None:
            raise JourneyError(["also_on", index], "`also_on` needs an event trigger")
        cls = _event_class(extra.event, ["also_on", index, "event"])
        if spec.entity is not None and spec.entity not in properties_of(cls):
            raise JourneyError(["also_on", index, "event"], f"{extra.event} has no {spec.entity!r}")
        when = extra.when and _condition(extra.when, cls, ["also_on", index, "when"], spec.id)
        also_on.append((cls, when or None))
    kwargs["also_on"] = tuple(also_on)
    if spec.entity is not None:
        if trigger_event is None:
            raise JourneyError(["entity"], "an entity scope needs an event trigger")
        if spec.entity not in properties_of(trigger_event):
            raise JourneyError(
                ["entity"],
                f"{_kind(trigger_event)} has no property {spec.entity!r} to scope runs by",
            )
    exit_on: list[tuple[type[Envelope], Condition | None]] = []
    for index, item in enumerate(spec.exit_on):
        kind = item if isinstance(item, str) else item.event
        loc: list[str | int] = (
            ["exit_on", index] if isinstance(item, str) else ["exit_on", index, "event"]
        )
        cls = _event_class(kind, loc)
        if spec.entity is not None and spec.entity not in properties_of(cls):
            raise JourneyError(
                loc, f"{kind} has no property {spec.entity!r}, so it cannot end a run scoped by it"
            )
        condition = None
        if not isinstance(item, str):
            condition = _condition(item.when, cls, ["exit_on", index, "when"], spec.id)
        exit_on.append((cls, condition))
    steps = _compile_steps(spec, trigger_event, policies, defined_tags)
    captured = sorted(
        {
            source.removeprefix("event.")
            for step in steps
            if isinstance(step, Send | Emit)
            for _, source in step.payload
            if source.startswith("event.")
        }
        | {name for step in steps if isinstance(step, Branch) for name in _event_names(step.source)}
        | {step.per for step in steps if isinstance(step, Wait) and step.per is not None}
    )
    if spec.goal is not None:
        goal = _event_class(spec.goal.event, ["goal", "event"])
        if spec.entity is not None and spec.entity not in properties_of(goal):
            raise JourneyError(
                ["goal", "event"], f"{spec.goal.event} has no property {spec.entity!r}"
            )
        kwargs["goal_event"] = goal
        kwargs["goal_seconds"] = checked_duration(spec.goal.within, ["goal", "within"])
    if spec.reentry.cooldown is not None:
        kwargs["cooldown_seconds"] = checked_duration(
            spec.reentry.cooldown, ["reentry", "cooldown"]
        )
    variants = []
    for index, variant in enumerate(spec.variants):
        templates = {t for step in steps if isinstance(step, Send) for t in [step.template]}
        for old in variant.templates:
            if old not in templates:
                raise JourneyError(
                    ["variants", index, "templates", old],
                    f"no send step uses template {old!r}; the journey uses {sorted(templates)}",
                )
        variants.append((variant.id, variant.weight, dict(variant.templates)))
    return Journey(
        id=spec.id,
        priority=spec.priority,
        steps=tuple(steps),
        entity=spec.entity,
        exit_on=tuple(exit_on),
        max_entries=spec.reentry.max_entries,
        same_entity=spec.reentry.same_entity,
        on_cap=spec.on_cap,
        holdout=spec.holdout,
        variants=tuple(variants),
        captured=tuple(captured),
        **kwargs,
    )


def _compile_steps(
    spec: JourneySpec,
    trigger_event: type[Envelope] | None,
    policies: Policies,
    defined_tags: frozenset[str],
) -> list[CompiledStep]:
    ids: dict[str, int] = {}
    for index, step in enumerate(spec.steps):
        if step.id is not None:
            if step.id in ids:
                raise JourneyError(["steps", index, "id"], f"duplicate step id {step.id!r}")
            ids[step.id] = index
    compiled: list[CompiledStep] = []
    points_trigger = isinstance(spec.trigger, PointsExpiringTrigger)
    for index, step in enumerate(spec.steps):
        loc: list[str | int] = ["steps", index]
        if isinstance(step, WaitStep):
            if isinstance(step.wait, str):
                compiled.append(Wait(seconds=checked_duration(step.wait, [*loc, "wait"])))
            elif isinstance(step.wait, WaitPer):
                compiled.append(_compile_wait_per(step.wait, trigger_event, [*loc, "wait"]))
            else:
                hour, minute = step.wait.until.split(":")
                compiled.append(Wait(until=(int(hour), int(minute))))
        elif isinstance(step, SendStep):
            compiled.append(_compile_send(step, trigger_event, policies, loc, points_trigger))
        elif isinstance(step, BranchStep):
            branch = step.branch
            targets = []
            for name in ("goto", "otherwise"):
                target = getattr(branch, name)
                if target is None:
                    targets.append(index + 1)
                    continue
                if target not in ids:
                    raise JourneyError([*loc, "branch", name], unknown_name("step id", target, ids))
                if ids[target] <= index:
                    raise JourneyError(
                        [*loc, "branch", name],
                        f"step {target!r} comes before this branch; journeys only move forward",
                    )
                targets.append(ids[target])
            condition = _condition(
                branch.when, trigger_event, [*loc, "branch", "when"], spec.id, run_names=True
            )
            compiled.append(Branch(condition, branch.when, targets[0], targets[1]))
        elif isinstance(step, TagStep | UntagStep):
            tag = step.tag if isinstance(step, TagStep) else step.untag
            if tag in defined_tags:
                raise JourneyError(
                    [*loc, "tag" if isinstance(step, TagStep) else "untag"],
                    f"tag {tag!r} is defined in tags.yaml and kept by its own rule; "
                    "a journey may only set tags of its own",
                )
            compiled.append(SetTag(tag, isinstance(step, TagStep)))
        elif isinstance(step, EmitStep):
            payload = _payload(
                step.emit.payload, trigger_event, [*loc, "emit", "payload"], points_trigger
            )
            compiled.append(Emit(step.emit.event, payload))
        elif isinstance(step, PointsStep):
            compiled.append(AwardPoints(step.points))
        elif isinstance(step, ExitStep):
            compiled.append(End())
    _check_reachable(compiled, spec)
    return compiled


def _compile_wait_per(
    wait: WaitPer, trigger_event: type[Envelope] | None, loc: list[str | int]
) -> Wait:
    if not wait.per.startswith("event.") or trigger_event is None:
        raise JourneyError(
            [*loc, "per"], "`per` names a property of the trigger event: event.<name>"
        )
    prop = wait.per.removeprefix("event.")
    known = properties_of(trigger_event)
    if prop not in known:
        raise JourneyError(
            [*loc, "per"],
            f"{_kind(trigger_event)} has no property {prop!r}; it has {sorted(known)}",
        )
    durations = {
        value: checked_duration(text, [*loc, "durations", value])
        for value, text in wait.durations.items()
    }
    return Wait(
        seconds=checked_duration(wait.default, [*loc, "default"]), per=prop, durations=durations
    )


def _compile_send(
    step: SendStep,
    trigger_event: type[Envelope] | None,
    policies: Policies,
    loc: list[str | int],
    points_trigger: bool = False,
) -> Send:
    send = step.send
    channel = policies.channels.get(send.channel)
    if channel is None:
        raise JourneyError(
            [*loc, "send", "channel"], unknown_name("channel", send.channel, policies.channels)
        )
    templates = channel[1]
    if templates and send.template not in templates:
        raise JourneyError(
            [*loc, "send", "template"],
            unknown_name(f"template for {send.channel}", send.template, sorted(templates)),
        )
    payload = _payload(send.payload, trigger_event, [*loc, "send", "payload"], points_trigger)
    valid = 0.0
    if send.coupon is not None:
        coupon = send.coupon
        if (coupon.percent is None) == (coupon.amount is None):
            raise JourneyError(
                [*loc, "send", "coupon"], "a coupon needs exactly one of percent or amount"
            )
        valid = checked_duration(coupon.valid_for, [*loc, "send", "coupon", "valid_for"])
        if coupon.pool is not None and coupon.pool not in policies.coupon_pools:
            raise JourneyError(
                [*loc, "send", "coupon", "pool"],
                unknown_name("coupon pool", coupon.pool, policies.coupon_pools),
            )
    return Send(send.channel, send.template, payload, send.coupon, valid)


def _check_reachable(steps: list[CompiledStep], spec: JourneySpec) -> None:
    reached = set()
    pending = [0]
    while pending:
        index = pending.pop()
        if index >= len(steps) or index in reached:
            continue
        reached.add(index)
        step = steps[index]
        if isinstance(step, Branch):
            pending += [step.goto, step.otherwise]
        elif not isinstance(step, End):
            pending.append(index + 1)
    for index in range(len(steps)):
        if index not in reached:
            raise JourneyError(
                ["steps", index],
                "unreachable step: no path from the start leads here (after an exit, or jumped over)",
            )
