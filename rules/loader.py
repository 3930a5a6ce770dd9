"""Loading a rules directory into a compiled, versioned rule set.

A directory holds ``tags.yaml`` today (journeys and policies join it later). Every
problem found is reported with ``file:line:col``; nothing half-loaded is ever returned.

>>> from pathlib import Path
>>> rules = load_rules(Path(__file__).parent)
>>> "sneaker_fan" in rules.tags.ids
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from rules.tags import TagFile, TagSet, TagSpecError
from rules.yaml_source import RuleFileError, load_yaml_file, located_errors

DEFAULT_RULES_DIR = Path(__file__).parent
TAGS_FILE = "tags.yaml"


@dataclass(frozen=True)
class RuleSet:
    tags: TagSet
    #: Short digest of the rule files' content: which rules produced an output.
    version: str
    source: str

    @classmethod
    def empty(cls) -> RuleSet:
        return cls(TagSet(), "empty", "(none)")


def load_rules(directory: Path) -> RuleSet:
    """Compile every rule file in ``directory``; raise ``RuleFileError`` listing all problems."""
    if not directory.is_dir():
        raise RuleFileError([f"{directory}: not a directory of rule files"])
    digest = hashlib.sha256()
    problems: list[str] = []
    tags = TagSet()
    tags_path = directory / TAGS_FILE
    if tags_path.exists():
        digest.update(tags_path.read_bytes())
        try:
            tags = _load_tags(tags_path)
        except RuleFileError as error:
            problems.extend(error.problems)
    if problems:
        raise RuleFileError(problems)
    return RuleSet(tags=tags, version=digest.hexdigest()[:12], source=str(directory))


def _load_tags(path: Path) -> TagSet:
    doc = load_yaml_file(path)
    try:
        spec = TagFile.model_validate(doc.data or {})
    except ValidationError as error:
        raise RuleFileError(located_errors(doc, error)) from error
    try:
        return TagSet.from_specs(spec.tags)
    except TagSpecError as error:
        raise RuleFileError(
            [f"{doc.locate(error.loc)}: {'.'.join(map(str, error.loc))}: {error}"]
        ) from error
