"""Reading marketer YAML with line numbers, and turning validation errors into located messages.

>>> doc = load_yaml_text("tags:\\n  - id: vip\\n    when: 'x'\\n", "tags.yaml")
>>> doc.locate(("tags", 0, "when"))
'tags.yaml:3:11'
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

#: A rule file larger than this is refused before it is parsed: the shipped files are a
#: few kilobytes, and a huge one would take minutes to check.
MAX_RULE_FILE_BYTES = 1 << 20


class RuleFileError(Exception):
    """One or more problems in rule files, each as ``file:line:col: reason``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class YamlDocument:
    path: str
    data: Any
    #: The file's text, for positions inside a value (a Liquid part).
    text: str = ""

    def locate(self, loc: Sequence[str | int]) -> str:
        """``file:line:col`` of the deepest node along ``loc`` that exists (1-based)."""
        node, line, col = self.data, 0, 0
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                line, col = _key_position(node, part)
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line, col = node.lc.item(part)
                node = node[part]
            else:
                break
        return f"{self.path}:{line + 1}:{col + 1}"


def _key_position(node: CommentedMap, key: Any) -> tuple[int, int]:
    """Where the value of ``key`` starts, or the key itself for block values."""
    value_line, value_col = node.lc.value(key)
    if isinstance(node[key], CommentedMap | CommentedSeq):
        return node.lc.key(key)  # type: ignore[no-any-return]
    return value_line, value_col


def load_yaml_text(text: str, path: str) -> YamlDocument:
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise RuleFileError([f"{where}: not valid YAML: {error.problem}"]) from error
    except ReaderError as error:  # a character YAML does not allow, e.g. a control character
        at = error.position
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        raise RuleFileError(
            [
                f"{path}:{line}:{column}: not valid YAML: character #x{error.character:04x} is not allowed"
            ]
        ) from error
    except YAMLError as error:
        raise RuleFileError([f"{path}: not valid YAML: {error}"]) from error
    except RecursionError as error:
        raise RuleFileError([f"{path}: not valid YAML: nested too deep"]) from error
    shared = _first_alias(data)
    if shared is not None:
        raise RuleFileError(
            [
                f"{path}:{shared}: YAML aliases (`*name`) are not allowed in rule files: "
                "write the value out (an alias of an alias can make a small file huge)"
            ]
        )
    return YamlDocument(path, data, text)


def _first_alias(data: Any) -> str | None:
    """``line:col`` of the first mapping or list that appears twice (an alias), or None."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if not isinstance(node, CommentedMap | CommentedSeq):
            continue
        if id(node) in seen:
            return f"{node.lc.line + 1}:{node.lc.col + 1}"
        seen.add(id(node))
        stack.extend(node.values() if isinstance(node, CommentedMap) else node)
    return None


def load_yaml_file(path: Path) -> YamlDocument:
    try:
        size = path.stat().st_size
        if size > MAX_RULE_FILE_BYTES:
            raise RuleFileError(
                [f"{path}: {size:,} bytes; a rule file is at most {MAX_RULE_FILE_BYTES:,} bytes"]
            )
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RuleFileError([f"{path}: cannot read: {error.strerror}"]) from error
    except UnicodeDecodeError as error:
        raise RuleFileError(
            [f"{path}: not UTF-8 text (byte {error.start}: {error.reason})"]
        ) from error
    return load_yaml_text(text, str(path))


def located_errors(
    doc: YamlDocument,
    error: ValidationError,
    prefix: Sequence[str | int] = (),
    union_tags: Collection[str] = (),
    union_fields: Collection[str] = (),
) -> list[str]:
    """Pydantic errors as ``file:line:col: field: reason`` lines.

    Tagged unions put their tag into an error's location (``steps.1.send.send.channel``);
    a part in ``union_tags`` right after a list index or a field in ``union_fields`` is
    that tag, not a key of the file, and is left out.
    """
    problems = []
    for item in error.errors():
        loc: list[str | int] = list(prefix)
        for part in item["loc"]:
            if isinstance(part, str) and "[" in part:
                continue
            previous = loc[-1] if loc else None
            if (
                part in union_tags
                and previous is not None
                and (isinstance(previous, int) or previous in union_fields)
            ):
                continue
            loc.append(part)
        field = ".".join(str(part) for part in loc) or "(document)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see docs/rules.md)"
        problems.append(f"{doc.locate(loc)}: {field}: {message}")
    return problems
