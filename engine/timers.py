"""The timer queue: when each profile's next review, journey moment or churn check-in is due.

A timer is (due, kind, profile key). The profile keeps the time it is due at
(``next_review_at``, ``journeys.next_due_at``, ``churn.next_due_at``); a timer whose
profile has moved on since it was queued is stale and skipped when it fires
(``engine/firing.py``), so re-arming never needs to find and remove the old one.

>>> timers = Timers()
>>> timers.arm(REVIEW, "c1", 20.0, None); timers.arm(JOURNEY, "c2", 10.0, 10.0)
>>> timers.arm(JOURNEY, "c2", 15.0, None); timers.next_at(), timers.pop()
(15.0, (15.0, 1, 'c2'))
>>> timers.drop({"c1"}), len(timers)
(1, 0)
"""

from __future__ import annotations

import heapq
from collections.abc import Collection

#: Kinds of timer, in the order they fire at equal times.
REVIEW, JOURNEY, CHURN = 0, 1, 2

Timer = tuple[float, int, str]


class Timers:
    def __init__(self) -> None:
        self.queue: list[Timer] = []

    def arm(self, kind: int, key: str, due: float | None, already: float | None) -> None:
        """Queue ``key``'s timer of ``kind`` at ``due``, unless that exact time is queued
        already (``already``) or there is nothing due."""
        if due is not None and due != already:
            heapq.heappush(self.queue, (due, kind, key))

    def next_at(self) -> float | None:
        queue = self.queue
        return queue[0][0] if queue else None

    def pop(self) -> Timer:
        return heapq.heappop(self.queue)

    def drop(self, keys: Collection[str]) -> int:
        """Take every timer of ``keys`` out of the queue; how many there were."""
        queue = self.queue
        before = len(queue)
        queue[:] = [timer for timer in queue if timer[2] not in keys]  # in place: a loop
        heapq.heapify(queue)  # over the queue (``Engine.advance``) sees the change
        return before - len(queue)

    def __len__(self) -> int:
        return len(self.queue)
