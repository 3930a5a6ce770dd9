"""Watching a rules directory in long-running modes: swap in valid changes, keep the last good set.

>>> from rules.loader import DEFAULT_RULES_DIR, load_rules
>>> watcher = RulesWatcher(DEFAULT_RULES_DIR, load_rules(DEFAULT_RULES_DIR))
>>> watcher.check() is None     # nothing changed
True
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rules.loader import JOURNEYS_DIR, RuleSet, load_rules
from rules.yaml_source import RuleFileError

log = logging.getLogger("rapport.rules")


def _fingerprint(directory: Path) -> str:
    """Rule files and coupon pool files (any ``*.txt`` below the directory)."""
    digest = hashlib.sha256()
    files = [*directory.glob("*.yaml"), *(directory / JOURNEYS_DIR).glob("*.yaml")]
    for path in sorted([*files, *directory.rglob("*.txt")]):
        digest.update(str(path).encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


class RulesWatcher:
    """``check()`` returns a new rule set when the files changed and load cleanly.

    An invalid change raises ``RuleFileError`` once, and is not retried until the files
    change again, so the caller keeps its current rules and reports the problem once.
    """

    def __init__(self, directory: Path, current: RuleSet) -> None:
        self.directory = directory
        self.current = current
        self._seen = _fingerprint(directory)

    def check(self) -> RuleSet | None:
        fingerprint = _fingerprint(self.directory)
        if fingerprint == self._seen:
            return None
        self._seen = fingerprint
        fresh = load_rules(self.directory)
        self.current = fresh
        return fresh


@dataclass
class Reloads:
    """The one reload rule, for replay and the worker: a changed, valid rule set is swapped
    in; an invalid change is refused and reported once, and the running rules stay.

    >>> from rules.loader import DEFAULT_RULES_DIR, load_rules
    >>> running, reloads = load_rules(DEFAULT_RULES_DIR), Reloads()
    >>> reloads.take(lambda: running, running), reloads.reloaded
    (None, 0)
    """

    reloaded: int = 0
    rejected: int = 0

    def take(self, check: Callable[[], RuleSet | None], running: RuleSet) -> RuleSet | None:
        """The rule set to swap in for ``running`` (``check`` looks for a change), or None."""
        try:
            fresh = check()
        except RuleFileError as error:
            self.rejected += 1
            log.warning("rules change rejected, keeping %s:\n%s", running.version, error)
            return None
        if fresh is None or fresh.version == running.version:
            return None
        self.reloaded += 1
        log.info("rules reloaded: now %s", fresh.version)
        return fresh
