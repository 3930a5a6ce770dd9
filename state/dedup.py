"""Recognising redelivered events: an engine's bounded memory of the ids it saw lately
(``SeenEvents``), and each profile's own record of its newest events (``recent_events``).

``SeenEvents`` is bounded two ways: by count, and by event time (ids older than the
window are forgotten once newer events arrive). Deterministic: eviction follows arrival
order. It lives in memory; a profile's record is stored with the profile, so an event
redelivered after a restart is still recognised. That record keeps an 8-byte digest of
each id (BLAKE2b), packed: 8 bytes an event whatever the producer's ids look like (a
UUID is 36 characters). Two ids share a digest with a chance of one in 2^64.

>>> seen = SeenEvents(max_entries=2, window_seconds=3600)
>>> seen.check_and_add("e1", 0.0), seen.check_and_add("e1", 1.0)
(False, True)
>>> recent = remember(remember(b"", event_digest("e1"), 2), event_digest("e2"), 2)
>>> holds(recent, event_digest("e1")), holds(remember(recent, event_digest("e3"), 2), event_digest("e1"))
(True, False)
"""

from __future__ import annotations

import hashlib
from collections import deque

#: Bytes of one event's digest in a profile's ``recent_events``.
DIGEST_BYTES = 8


def event_digest(event_id: str) -> bytes:
    """The digest a profile keeps of ``event_id``."""
    return hashlib.blake2b(
        event_id.encode(), digest_size=DIGEST_BYTES, person=b"rapport-event"
    ).digest()


def holds(recent: bytes, digest: bytes) -> bool:
    """Whether the packed digests ``recent`` hold ``digest`` (at a digest boundary)."""
    at = recent.find(digest)
    while at != -1 and at % DIGEST_BYTES:
        at = recent.find(digest, at + 1)
    return at != -1


def remember(recent: bytes, digest: bytes, keep: int) -> bytes:
    """``recent`` with ``digest`` added as the newest; the oldest go beyond ``keep``."""
    return (recent + digest)[-keep * DIGEST_BYTES :]


def merge_recent(target: bytes, source: bytes, keep: int) -> bytes:
    """The digests of two profiles merged: ``source``'s not in ``target`` first (older), then
    ``target``'s, the newest ``keep`` kept."""
    size = DIGEST_BYTES
    older = b"".join(
        chunk
        for chunk in (source[i : i + size] for i in range(0, len(source), size))
        if not holds(target, chunk)
    )
    return (older + target)[-keep * size :]


class SeenEvents:
    def __init__(self, max_entries: int, window_seconds: float) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.window_seconds = window_seconds
        self._seen: set[str] = set()
        self._arrivals: deque[tuple[float, str]] = deque()
        self._newest = float("-inf")

    def check_and_add(self, event_id: str, ts: float) -> bool:
        """True if ``event_id`` was seen within the window (a duplicate); else remember it."""
        seen = self._seen
        if event_id in seen:
            return True
        seen.add(event_id)
        arrivals = self._arrivals
        arrivals.append((ts, event_id))
        if ts > self._newest:
            self._newest = ts
        if len(arrivals) > self.max_entries or arrivals[0][0] < self._newest - self.window_seconds:
            self._evict()
        return False

    def _evict(self) -> None:
        seen, arrivals = self._seen, self._arrivals
        horizon = self._newest - self.window_seconds
        while len(arrivals) > self.max_entries or arrivals[0][0] < horizon:
            seen.discard(arrivals.popleft()[1])

    def forget(self, event_ids: set[str]) -> None:
        self._seen -= event_ids

    def __len__(self) -> int:
        return len(self._seen)
