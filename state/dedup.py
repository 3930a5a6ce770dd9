"""A bounded memory of recently seen event ids, to skip redelivered events.

Bounded two ways: by count, and by event time (ids older than the window are
forgotten once newer events arrive). Deterministic: eviction follows arrival order.

>>> seen = SeenEvents(max_entries=2, window_seconds=3600)
>>> seen.check_and_add("e1", 0.0), seen.check_and_add("e1", 1.0)
(False, True)
"""

from __future__ import annotations

from collections import deque


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
