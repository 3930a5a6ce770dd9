"""Checks between the journeys and the message templates, once both are compiled: every
send finds its template for its channel, every template has the locales the policies ask
for, the ``payload.*`` and ``event.*`` names a template reads exist for each send that
uses it, and every part renders against a profile built from the contract's types.

Each problem is ``file:line:col: field: reason``, in the journey file (a send without its
template) or the template file (everything else).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from msgspec import inspect

from rules.actions import Coupon
from rules.event_properties import properties_of
from rules.journey_steps import Journey, Send, unknown_name
from rules.message_context import DEVELOPMENT_LINKS
from rules.message_render import Renderer, RenderFailure
from rules.policy_compiler import Policies
from rules.profile_view import PROFILE_GETTERS
from rules.template_compiler import ChannelTemplate, MessageTemplates
from rules.time_triggers import POINTS_EXPIRING_FIELDS
from rules.yaml_source import YamlDocument
from state.profile import Profile, Stamped
from state.stores.codec import sample_value


def sends_of(journey: Journey) -> Iterator[tuple[int, Send, str]]:
    """(step index, send step, template) for every template a send may use, its variants'
    replacements included."""
    for index, step in enumerate(journey.steps):
        if isinstance(step, Send):
            yield index, step, step.template
            for _, _, replacements in journey.variants:
                if step.template in replacements:
                    yield index, step, replacements[step.template]


def check_templates(templates: MessageTemplates, policies: Policies) -> list[str]:
    """Every template has the default locale and the ones the policies list."""
    settings = policies.messages
    wanted = [settings.default_locale, *settings.locales]
    problems = []
    for (_, channel), compiled in sorted(templates.by_key.items()):
        missing = [locale for locale in wanted if locale not in compiled.locales]
        if missing:
            problems.append(
                f"{compiled.where}: channels.{channel}: no message in {', '.join(missing)}; "
                f"policies.yaml (messages) asks every template for {', '.join(wanted)}"
            )
    return problems


def trigger_fields(journey: Journey) -> dict[str, Any] | None:
    """What ``event.<name>`` a journey's messages and payloads may read, with a typical
    value of each: the trigger event's properties, or what a points-expiry trigger tells
    (``rules/time_triggers.py``); None for journeys whose runs have no such fields."""
    if journey.trigger_event is not None:
        return properties_of(journey.trigger_event)
    if journey.points_expiring is not None:
        return dict(POINTS_EXPIRING_FIELDS)
    return None


def check_sends(
    journeys: list[Journey],
    docs: Mapping[str, YamlDocument],
    templates: MessageTemplates,
    policies: Policies,
) -> tuple[list[Journey], list[str]]:
    """The journeys, each capturing the trigger properties its templates read, and the
    problems found."""
    problems: list[str] = []
    renderer = Renderer(templates, policies.messages, policies.operator_rules)
    checked: list[Journey] = []
    for journey in journeys:
        doc = docs[journey.id]
        captured = set(journey.captured)
        trigger = trigger_fields(journey)
        for index, step, name in sends_of(journey):
            compiled = templates.get(name, step.channel)
            if compiled is None:
                loc: list[str | int] = ["steps", index, "send", "template"]
                having = sorted({t for t, channel in templates.by_key if channel == step.channel})
                problems.append(
                    f"{doc.locate(loc)}: {'.'.join(map(str, loc))}: no {step.channel} message "
                    f"for template {name!r} in templates/ "
                    f"(templates with one: {', '.join(having) or 'none'})"
                )
                continue
            payload = dict(step.payload)
            before = len(problems)
            for use in compiled.uses:
                if use.root == "payload" and use.name not in payload:
                    problems.append(
                        f"{use.where}: payload.{use.name}: the {step.channel} send of "
                        f"{doc.path} (step {index + 1}) has no payload {use.name!r}; "
                        f"it has {', '.join(sorted(payload)) or 'none'}"
                    )
                elif use.root == "event" and trigger is None:
                    problems.append(
                        f"{use.where}: event.{use.name}: {doc.path} does not start on an "
                        "event, so its messages have no `event`"
                    )
                elif use.root == "event" and trigger is not None and use.name not in trigger:
                    problems.append(
                        f"{use.where}: event.{use.name} (for {doc.path}): "
                        f"{unknown_name('property of the trigger event', use.name, trigger)}"
                    )
                elif use.root == "event":
                    captured.add(use.name)
            if len(problems) == before:  # a name that does not exist fails the render too
                sent_by = f"{doc.path} step {index + 1}"
                problems.extend(
                    _sample_render(renderer, compiled, journey, step, trigger or {}, sent_by)
                )
        checked.append(dataclasses.replace(journey, captured=tuple(sorted(captured))))
    return checked, problems


def sample_profile() -> Profile:
    """A profile with every field set and one entry in each collection, from the types."""
    profile: Profile = sample_value(inspect.type_info(Profile), absent=False)
    for cart in profile.carts.values():
        cart.last_touched_at = cart.opened_at = 1.0
        for line in cart.lines.values():
            line.quantity, line.price_cents, line.name = 2, 1999, "Sample product"
    return profile


def _plain(value: Any) -> Any:
    return sorted(value) if isinstance(value, frozenset) else value


def _sample_render(
    renderer: Renderer,
    compiled: ChannelTemplate,
    journey: Journey,
    step: Send,
    trigger: Mapping[str, Any],
    sent_by: str,
) -> list[str]:
    """Render every locale of ``compiled`` for sample sends of ``step`` (``sent_by``): to a
    profile with every field set, and to a new one (no cart, order or ticket)."""
    problems: list[str] = []
    for profile, kind in ((sample_profile(), "full"), (Profile(key="c", customer_id="c"), "new")):
        problems.extend(
            _render_each_locale(renderer, compiled, journey, step, trigger, profile, kind, sent_by)
        )
    return list(dict.fromkeys(problems))


def _render_each_locale(
    renderer: Renderer,
    compiled: ChannelTemplate,
    journey: Journey,
    step: Send,
    trigger: Mapping[str, Any],
    profile: Profile,
    kind: str,
    sent_by: str,
) -> list[str]:
    payload = {
        name: trigger.get(source.removeprefix("event."))
        if source.startswith("event.")
        else _plain(PROFILE_GETTERS[source](profile))
        for name, source in step.payload
    }
    coupon = Coupon(code="SAMPLE-CODE", percent=10, amount=None, valid_until=86_400.0)
    entities = {
        "cart_id": next(iter(profile.carts), None),
        "order_id": next(iter(profile.orders.recent), None),
        "ticket_id": next(iter(profile.support.tickets), None),
    }
    problems = []
    for locale in sorted(compiled.locales):
        profile.traits["locale"] = Stamped(locale, 0.0, "sample")
        try:
            renderer.render(
                profile,
                template=compiled.template,
                channel=compiled.channel,
                journey_id=journey.id,
                entity_kind=journey.entity,
                entity=entities.get(journey.entity or ""),
                payload=payload,
                event=dict(trigger),
                coupon=coupon if step.coupon is not None else None,
                links=DEVELOPMENT_LINKS,
            )
        except RenderFailure as failure:
            at = compiled.part_at.get((locale, failure.part or ""))
            where = compiled.where if at is None else at(failure.offset)
            field = f"channels.{compiled.channel}.{locale}.{failure.part or ''}".rstrip(".")
            coupon_hint = "" if step.coupon is not None else "; this send has no coupon"
            hint = (
                f" (rendered for {sent_by}, to a new customer, who has no cart, order or "
                f"ticket: guard it with {{% if cart %}}…{{% endif %}}, or order, or ticket"
                f"{coupon_hint})"
                if kind == "new"
                else f" (rendered for a sample send of {sent_by}{coupon_hint})"
            )
            problems.append(f"{where}: {field}: {failure}{hint}")
    return problems
