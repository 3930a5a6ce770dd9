"""Rendering a send's message: the template for its channel, in the customer's locale,
with the names of ``rules/message_context.py``.

A render that fails (a limit reached, a value a filter cannot take, a name that is nil
where the template needs it) raises ``RenderFailure`` with the reason; the journey then
suppresses the send with reason ``template_error`` (``rules/journey_moves.py``). Nothing a
template does can stop the engine.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from io import StringIO
from typing import Any

from liquid import BoundTemplate
from liquid.exceptions import LiquidError
from liquid.output import LimitedStringIO

from rules.actions import Coupon, Message
from rules.journey_spec import MessagesSpec, OperatorRules
from rules.liquid_codegen import NotCompiled, Render, generate
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

    def interpreted_parts(self) -> list[str]:
        """The parts left to the interpreter, and why: they render three to seven times slower."""
        found: list[str] = []
        if not self.compile_parts:
            return found
        for (template, channel), compiled in sorted(self.templates.by_key.items()):
            for locale, parts in compiled.locales.items():
                for name, part in parts.items():
                    reason = self._part(part).interpreted_because
                    if reason is not None:
                        found.append(f"{template} {channel} {locale} {name} ({reason})")
        return found

    @property
    def fallbacks(self) -> int:
        """Renders the compiled parts handed to the interpreter (a nil, a limit, ...)."""
        return sum(part.fallbacks for part in self.parts.values())


class CompiledPart:
    """One template part: rendered by its generated function (``rules/liquid_codegen.py``)
    when it compiles, else interpreted. The function's text is kept only on the ordinary
    path: when it gives up or raises, or its text is over the output limit, the
    interpreter renders the part instead, with its own text or its own error.

    ``context_filters``: filters taking the render context that may be called with a
    name resolver in its place (they read names with ``context.resolve`` only);
    ``compile=False``: always interpret (the benchmark's baseline).
    """

    def __init__(
        self,
        part: BoundTemplate,
        context_filters: Collection[object] = (),
        *,
        compile: bool = True,
    ) -> None:
        self.part = part
        #: Renders that gave up on the compiled path and were interpreted.
        self.fallbacks = 0
        self._limit = part.env.output_stream_limit
        self._render: Render | None = None
        #: The generated source (None: interpreted), for the curious and the tests.
        self.source: str | None = None
        #: Why the part is interpreted (``assign``, ``forloop``, ...); None: compiled.
        self.interpreted_because: str | None = "not compiled"
        if compile:
            try:
                self.source, self._render = generate(part, context_filters)
                self.interpreted_because = None
            except NotCompiled as error:
                self.interpreted_because = str(error)
            except (SyntaxError, RecursionError, MemoryError):
                # Python's own limits (a path hundreds of keys deep): the interpreter's.
                self.interpreted_because = "nested too deep for Python"

    @property
    def compiled(self) -> bool:
        return self._render is not None

    def render(self, names: Mapping[str, Any]) -> str:
        """The part's text for ``names``; raises what the interpreter raises."""
        if self._render is not None:
            out: list[str] = []
            try:
                self._render(names, out)
            except Exception:  # the interpreter decides what it means
                self.fallbacks += 1
            else:
                text = "".join(out)
                if self._limit is None or len(text) <= self._limit:
                    return text
                self.fallbacks += 1
        return self.interpret(names)

    def interpret(self, names: Mapping[str, Any]) -> str:
        """``part.render(**names)`` without copying the names into a dict: the names go in
        as the context's globals (templates here have none of their own to chain)."""
        part = self.part
        context = part.context_class(part, globals=names)
        buffer = StringIO() if self._limit is None else LimitedStringIO(limit=self._limit)
        part.render_with_context(context, buffer)
        return buffer.getvalue()


def _coupon(coupon: Coupon) -> dict[str, Any]:
    return {
        "code": coupon.code,
        "percent": coupon.percent,
        "amount": coupon.amount,
        "valid_until": coupon.valid_until,
    }
