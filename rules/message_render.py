"""Rendering a send's message: the template for its channel, in the customer's locale,
with the names of ``rules/message_context.py``.

A render that fails (a limit reached, a value a filter cannot take, a name that is nil
where the template needs it) raises ``RenderFailure`` with the reason; the journey then
suppresses the send with reason ``template_error`` (``rules/journey_moves.py``). Nothing a
template does can stop the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from liquid import BoundTemplate
from liquid.exceptions import LiquidError

from rules.actions import Coupon, Message
from rules.journey_spec import MessagesSpec, OperatorRules
from rules.liquid_codegen import CompiledPart
from rules.message_context import MessageNames, UnsubscribeLinks, choose_locale
from rules.sms_text import sms_segments, with_operator_rules
from rules.template_compiler import MessageTemplates
from rules.template_env import FILTERS
from state.profile import Profile


class RenderFailure(Exception):
    """A template could not be rendered for one send; the message says why, ``part``
    which part failed (None: no template for the channel or locale)."""

    def __init__(self, message: str, part: str | None = None, offset: int = 0) -> None:
        super().__init__(message)
        self.part = part
        #: Where in the part's source the error is (a character offset).
        self.offset = offset


class Renderer:
    """Renders messages from compiled templates for the shop in ``settings``."""

    def __init__(
        self,
        templates: MessageTemplates,
        settings: MessagesSpec,
        operator_rules: Mapping[str, OperatorRules] | None = None,
        *,
        compile_parts: bool = True,
    ) -> None:
        self.templates = templates
        self.settings = settings
        #: channel -> the SMS operator rules its texts follow (``policies.yaml``).
        self.operator_rules = operator_rules or {}
        #: Each part compiled to a Python function (``rules/liquid_codegen.py``), by identity;
        #: ``compile_parts=False``: every part interpreted (the benchmark's baseline).
        self.compile_parts = compile_parts
        self.parts: dict[int, CompiledPart] = {
            id(part): CompiledPart(part, FILTERS.values(), compile=compile_parts)
            for compiled in templates.by_key.values()
            for parts in compiled.locales.values()
            for part in parts.values()
        }

    def render(
        self,
        profile: Profile,
        *,
        template: str,
        channel: str,
        journey_id: str,
        entity_kind: str | None,
        entity: str | None,
        payload: Mapping[str, Any],
        event: Mapping[str, Any],
        coupon: Coupon | None,
        links: UnsubscribeLinks,
    ) -> Message:
        compiled = self.templates.get(template, channel)
        if compiled is None:
            raise RenderFailure(f"no template {template!r} for channel {channel!r}")
        default = self.settings.default_locale
        locale = choose_locale(compiled.locales, profile.trait("locale"), default)
        parts = compiled.locales.get(locale)
        if parts is None:
            raise RenderFailure(f"template {template!r} has no {channel} message in {locale}")
        names = MessageNames(
            profile,
            entity_kind=entity_kind,
            entity=entity,
            channel=channel,
            journey_id=journey_id,
            payload=payload,
            event=event,
            coupon=None if coupon is None else _coupon(coupon),
            locale=locale,
            settings=self.settings,
            links=links,
        )
        rendered: dict[str, str] = {}
        for name, part in parts.items():
            try:
                rendered[name] = self._part(part).render(names)
            except LiquidError as error:
                reason = getattr(error, "message", None) or str(error).splitlines()[0]
                index = getattr(getattr(error, "token", None), "start_index", 0)
                raise RenderFailure(
                    f"{template} ({channel}, {locale}) {name}: {reason}",
                    name,
                    index if isinstance(index, int) else 0,
                ) from None
            except RecursionError:
                raise RenderFailure(
                    f"{template} ({channel}, {locale}) {name}: too deep", name
                ) from None
        unsubscribe = names["unsubscribe_url"]
        segments = None
        text = rendered.get("text")
        if channel == "sms" and text is not None:
            rules = self.operator_rules.get(channel)
            if rules is not None:
                rendered["text"] = text = with_operator_rules(text, rules)
            segments = sms_segments(text)
        return Message(locale=locale, unsubscribe=unsubscribe, segments=segments, **rendered)

    def _part(self, part: BoundTemplate) -> CompiledPart:
        compiled = self.parts.get(id(part))
        if compiled is None or compiled.part is not part:
            compiled = CompiledPart(part, FILTERS.values(), compile=self.compile_parts)
            self.parts[id(part)] = compiled
        return compiled

    @property
    def fallbacks(self) -> int:
        """Renders the compiled parts handed to the interpreter (a nil, a limit, ...)."""
        return sum(part.fallbacks for part in self.parts.values())


def _coupon(coupon: Coupon) -> dict[str, Any]:
    return {
        "code": coupon.code,
        "percent": coupon.percent,
        "amount": coupon.amount,
        "valid_until": coupon.valid_until,
    }
