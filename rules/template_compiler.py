"""Compiling the message templates in ``rules/templates/``: one YAML file per template,
with the parts of each channel in each locale, every part a Liquid template.

::

    id: cart_reminder
    channels:
      email:
        en:
          subject: "Your cart at {{ shop.name }} is waiting"
          text: |
            {% for item in cart.items %}- {{ item.name | default: item.product_id }}
            {% endfor %}
          html: |
            <p>...</p>
        zh-CN: {...}
      sms:
        en: {text: "..."}

Each part is parsed in the sandbox (``rules/template_env.py``) and its names checked
against what a template can read (``rules/message_context.py``); every problem is
reported as ``file:line:col`` inside the part, with a suggestion. Whether a journey's
sends find their templates, in every locale the policies ask for, and whether their
``payload.*`` and ``event.*`` names exist, is checked by the loader, which knows both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from liquid import BoundTemplate
from liquid.exceptions import LiquidError
from pydantic import Field, ValidationError
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import LiteralScalarString

from rules.journey_spec import _Spec
from rules.journey_steps import unknown_name
from rules.message_context import NAMES, OBJECTS
from rules.template_env import template_environment
from rules.yaml_source import RuleFileError, YamlDocument, load_yaml_file, located_errors

TEMPLATES_DIR: Final = "templates"
#: channel -> (parts it must have, parts it may have). Other channels: a text, maybe a subject.
CHANNEL_PARTS: Final[Mapping[str, tuple[frozenset[str], frozenset[str]]]] = {
    "email": (frozenset({"subject", "text"}), frozenset({"html"})),
    "sms": (frozenset({"text"}), frozenset()),
    "whatsapp": (frozenset({"text"}), frozenset()),
    "push": (frozenset({"title", "body"}), frozenset({"link"})),
    "in_app": (frozenset({"title", "body"}), frozenset({"link"})),
}
_OTHER_PARTS: Final = (frozenset({"text"}), frozenset({"subject"}))
PART_NAMES: Final = ("subject", "title", "text", "body", "html", "link")
#: Characters of one part's source: far above any real message.
MAX_PART_CHARS: Final = 50_000
_TEXT_ENV = template_environment(html=False)
_HTML_ENV = template_environment(html=True)


def parts_of(channel: str) -> tuple[frozenset[str], frozenset[str]]:
    return CHANNEL_PARTS.get(channel, _OTHER_PARTS)


class PartsSpec(_Spec):
    subject: str | None = Field(default=None, max_length=MAX_PART_CHARS)
    title: str | None = Field(default=None, max_length=MAX_PART_CHARS)
    text: str | None = Field(default=None, max_length=MAX_PART_CHARS)
    body: str | None = Field(default=None, max_length=MAX_PART_CHARS)
    html: str | None = Field(default=None, max_length=MAX_PART_CHARS)
    link: str | None = Field(default=None, max_length=MAX_PART_CHARS)


class TemplateSpec(_Spec):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="The name sends use.")
    description: str | None = None
    channels: dict[str, dict[str, PartsSpec]] = Field(
        description="channel -> locale (en, zh-CN, …) -> parts (email: subject, text, html; "
        "sms: text; push and in_app: title, body, link)."
    )


@dataclass(frozen=True)
class NameUse:
    """A ``payload.<name>`` or ``event.<name>`` a part reads, and where."""

    root: str
    name: str
    where: str


@dataclass(frozen=True)
class ChannelTemplate:
    """One template's parts for one channel, per locale."""

    template: str
    channel: str
    #: locale -> part -> compiled Liquid
    locales: Mapping[str, Mapping[str, BoundTemplate]]
    #: ``payload.*`` and ``event.*`` names the parts read.
    uses: tuple[NameUse, ...]
    #: ``file:line:col`` of the channel's key, for problems of the channel as a whole.
    where: str
    #: Where each part is, by (locale, part): ``file:line:col`` of a character offset.
    part_at: Mapping[tuple[str, str], Callable[[int], str]] = field(default_factory=dict)

    def event_names(self) -> set[str]:
        return {use.name for use in self.uses if use.root == "event"}


@dataclass(frozen=True)
class MessageTemplates:
    """The compiled templates of a rules directory, by (template, channel)."""

    by_key: Mapping[tuple[str, str], ChannelTemplate] = field(default_factory=dict)
    #: ``file:line:col`` of each template file's id.
    files: Mapping[str, str] = field(default_factory=dict)

    def get(self, template: str, channel: str) -> ChannelTemplate | None:
        return self.by_key.get((template, channel))

    def __len__(self) -> int:
        return len(self.by_key)


def load_templates(directory: Path) -> MessageTemplates | None:
    """The templates under ``directory/templates``; None when there is no such folder.
    Raise ``RuleFileError`` with every problem found."""
    folder = directory / TEMPLATES_DIR
    if not folder.is_dir():
        return None
    problems: list[str] = []
    by_key: dict[tuple[str, str], ChannelTemplate] = {}
    files: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            doc = load_yaml_file(path)
            compiled = compile_template_file(doc)
        except RuleFileError as error:
            problems.extend(error.problems)
            continue
        spec_id, channels = compiled
        if spec_id in files:
            problems.append(
                f"{path}:1:1: id: duplicate template id {spec_id!r} (also in {files[spec_id]})"
            )
            continue
        files[spec_id] = f"{doc.locate(('id',))}"
        for channel in channels:
            by_key[(spec_id, channel.channel)] = channel
    if problems:
        raise RuleFileError(problems)
    return MessageTemplates(by_key, files)


def compile_template_file(doc: YamlDocument) -> tuple[str, list[ChannelTemplate]]:
    """The template of one file: its id and its channels."""
    try:
        spec = TemplateSpec.model_validate(doc.data or {})
    except ValidationError as error:
        raise RuleFileError(located_errors(doc, error)) from error
    problems: list[str] = []
    channels: list[ChannelTemplate] = []
    for channel, locales in spec.channels.items():
        required, optional = parts_of(channel)
        compiled: dict[str, dict[str, BoundTemplate]] = {}
        uses: list[NameUse] = []
        part_at: dict[tuple[str, str], Callable[[int], str]] = {}
        for locale, parts in locales.items():
            loc: list[str | int] = ["channels", channel, locale]
            given = {name for name in PART_NAMES if getattr(parts, name) is not None}
            for missing in sorted(required - given):
                problems.append(
                    f"{doc.locate(loc)}: {'.'.join(map(str, loc))}: {channel} messages need "
                    f"a {missing!r} part (this has {', '.join(sorted(given)) or 'none'})"
                )
            for extra in sorted(given - required - optional):
                allowed = ", ".join(sorted(required | optional))
                problems.append(
                    f"{doc.locate([*loc, extra])}: {'.'.join(map(str, [*loc, extra]))}: "
                    f"{channel} messages have no {extra!r} part (they have {allowed})"
                )
            compiled[locale] = {}
            for name in sorted(given & (required | optional)):
                source = getattr(parts, name)
                located = _PartSource(doc, [*loc, name], source)
                part_at[(locale, name)] = located.at
                template = _compile_part(located, name == "html", problems, uses)
                if template is not None:
                    compiled[locale][name] = template
        channels.append(
            ChannelTemplate(
                template=spec.id,
                channel=channel,
                locales=compiled,
                uses=tuple(uses),
                where=doc.locate(["channels", channel]),
                part_at=part_at,
            )
        )
    if problems:
        raise RuleFileError(problems)
    return spec.id, channels


class _PartSource:
    """A part's Liquid source and where it sits in the YAML file, to turn an offset in the
    source into the file's ``line:col``."""

    def __init__(self, doc: YamlDocument, loc: Sequence[str | int], source: str) -> None:
        self.doc, self.loc, self.source = doc, list(loc), source
        node: Any = doc.data
        for part in loc[:-1]:
            node = node[part]
        self._block = isinstance(node, CommentedMap) and isinstance(
            node.get(loc[-1]), LiteralScalarString
        )
        line, col = node.lc.value(loc[-1]) if isinstance(node, CommentedMap) else (0, 0)
        self._line, self._col = line, col
        self._quoted = False
        lines = doc.text.splitlines() if doc.text else []
        if not self._block and line < len(lines):
            self._quoted = lines[line][col : col + 1] in ("'", '"')
        self._indent = 0
        if self._block:
            for text in lines[line + 1 :]:
                if text.strip():
                    self._indent = len(text) - len(text.lstrip(" "))
                    break

    def at(self, offset: int) -> str:
        """``file:line:col`` of character ``offset`` of the source (1-based)."""
        before = self.source[:offset]
        row = before.count("\n")
        col = offset - (before.rfind("\n") + 1)
        path = self.doc.path
        if self._block:
            return f"{path}:{self._line + 2 + row}:{self._indent + col + 1}"
        if row == 0:
            return f"{path}:{self._line + 1}:{self._col + 1 + int(self._quoted) + col}"
        return f"{path}:{self._line + 1}:{self._col + 1}"

    def field(self) -> str:
        return ".".join(map(str, self.loc))


def _compile_part(
    part: _PartSource, html: bool, problems: list[str], uses: list[NameUse]
) -> BoundTemplate | None:
    env = _HTML_ENV if html else _TEXT_ENV
    try:
        template = env.from_string(part.source, name=part.field())
    except LiquidError as error:
        problems.append(f"{_where(part, error)}: {part.field()}: {_reason(error)}")
        return None
    except RecursionError:
        problems.append(f"{part.at(0)}: {part.field()}: nested too deep")
        return None
    found = False
    analysis = template.analyze()
    for name, spans in analysis.filters.items():
        if name not in env.filters:
            where = part.at(spans[0].index) if spans else part.at(0)
            problems.append(f"{where}: {part.field()}: {unknown_name('filter', name, env.filters)}")
            found = True
    for variables in analysis.globals.values():
        for variable in variables:
            segments = variable.segments
            head = segments[0] if segments else None
            where = part.at(variable.span.index)
            if not isinstance(head, str):
                continue
            if head not in NAMES:
                problems.append(
                    f"{where}: {part.field()}: {unknown_name('name', head, sorted(NAMES))}"
                )
                found = True
                continue
            second = segments[1] if len(segments) > 1 else None
            if head in OBJECTS and isinstance(second, str) and second not in OBJECTS[head]:
                known = OBJECTS[head]
                problems.append(
                    f"{where}: {part.field()}: {head}.{second}: "
                    f"{unknown_name(f'field of {head}', second, known)}"
                )
                found = True
            elif head in ("payload", "event"):
                if isinstance(second, str):
                    uses.append(NameUse(head, second, where))
                else:
                    problems.append(
                        f"{where}: {part.field()}: read {head}.<name> (a name the journey gives)"
                    )
                    found = True
    return None if found else template


def _where(part: _PartSource, error: LiquidError) -> str:
    token = getattr(error, "token", None)
    index = getattr(token, "start_index", None)
    return part.at(index if isinstance(index, int) else 0)


def _reason(error: LiquidError) -> str:
    """The error's own message, without python-liquid's source excerpt."""
    message = getattr(error, "message", None)
    if isinstance(message, str) and message:
        return message
    return str(error).splitlines()[0]
