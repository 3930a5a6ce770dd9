"""Event time: the events waiting for the watermark, and the engine's clock.

An event waits until the watermark (the newest event time less the allowed lateness, or a
later moment the engine was advanced to) passes it, so events that arrive up to the
allowed lateness out of order are still applied in event-time order; ties go by event id.
Records of other engines that must be applied in event-time order with the events
(``engine/identity.py``) wait here too.

>>> order = EventOrder(lateness=60.0)
>>> order.see(1000.0), order.see(900.0)
(940.0, 940.0)
>>> order.hold(990.0, "e2", "event e2", None, False); order.hold(950.0, "e1", "event e1", None, False)
>>> order.next_at(), order.pop()[3], len(order)
(950.0, 'event e1', 1)
"""

from __future__ import annotations

import heapq
import itertools

#: A held item: (event time, order key, arrival, item, the caller's position, replayed).
Held = tuple[float, str, int, object, object, bool]


class EventOrder:
    def __init__(self, lateness: float) -> None:
        self.lateness = lateness
        self.pending: list[Held] = []
        self._sequence = itertools.count()
        #: The newest event time seen.
        self.newest = float("-inf")
        #: The latest moment the engine was advanced to; events before it are late.
        self.advanced = float("-inf")

    @property
    def watermark(self) -> float:
        """Event time up to which everything has fired."""
        return max(self.newest - self.lateness, self.advanced)

    def see(self, ts: float) -> float:
        """An event of time ``ts`` arrived: the watermark now."""
        if ts > self.newest:
            self.newest = ts
        watermark = self.newest - self.lateness
        return self.advanced if watermark < self.advanced else watermark

    def hold(self, ts: float, order: str, item: object, position: object, replayed: bool) -> None:
        """Keep ``item`` until the watermark reaches ``ts``; ``order`` breaks ties."""
        heapq.heappush(self.pending, (ts, order, next(self._sequence), item, position, replayed))

    def next_at(self) -> float | None:
        pending = self.pending
        return pending[0][0] if pending else None

    def pop(self) -> Held:
        return heapq.heappop(self.pending)

    def move_to(self, now: float) -> None:
        if now > self.advanced:
            self.advanced = now

    def restore(self, newest: float, advanced: float) -> None:
        """Start from a clock saved before a restart."""
        self.newest = max(self.newest, newest)
        self.advanced = max(self.advanced, advanced)

    def __len__(self) -> int:
        return len(self.pending)
