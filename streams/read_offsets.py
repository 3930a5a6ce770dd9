"""A guard for Faust's fetcher: a record fetched before its partition was sought back
is not handed over, and does not move the partition's read offset.

faust-streaming 0.15's fetcher iterates a fetched batch record by record, hands each to
the consumer's callback and then sets the partition's *read offset* to the record's
offset; a record fetched later below that offset is dropped as already read. A rebalance
that hands a worker back its own partitions seeks them to their committed offsets in the
middle of that iteration (changelog recovery runs with the flow on). The rest of the old
batch, made into messages of the new generation, then goes on being handed over, and
moves the read offset past the committed one: the records in between are dropped when
they are fetched again, and, never acked, never read (docs/operations.md, "Known limits").

A record is stale exactly when its offset is at or past the consumer's fetch position
for its partition: aiokafka moves the position past a batch when it returns it, and a
seek moves it back. ``guard_read_offsets`` wraps the callback so that a stale record is
dropped (it is fetched again from the sought offset), and replaces the read-offset map
with one that refuses the write after a stale record, or after one whose hand-over began
before the seek.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger("rapport.read_offsets")


class GuardedReadOffsets(defaultdict[Any, int | None]):
    """Faust's per-partition read offsets; the fetcher's write after a record that
    ``is_stale`` (or was dropped as stale) is refused."""

    def __init__(
        self, is_stale: Callable[[Any, int], bool], initial: dict[Any, int | None]
    ) -> None:
        super().__init__(lambda: None, initial)
        self._is_stale = is_stale
        #: (topic partition, offset) of records dropped as stale, and handed over.
        self.dropped: set[tuple[Any, int]] = set()
        self.handed_over: set[tuple[Any, int]] = set()
        #: Records dropped, and writes refused after a hand-over that a seek overtook.
        self.drops = 0
        self.refused = 0

    def __setitem__(self, tp: Any, offset: int | None) -> None:
        if offset is not None:
            key = (tp, offset)
            if key in self.dropped:
                self.dropped.discard(key)
                return
            if key in self.handed_over:
                self.handed_over.discard(key)
                if self._is_stale(tp, offset):
                    self.refused += 1
                    log.debug(
                        "read offset of %s not moved to %d: sought back meanwhile", tp, offset
                    )
                    return
        super().__setitem__(tp, offset)


def fetch_position(consumer: Any, tp: Any) -> int | None:
    """The aiokafka consumer's position (next offset to fetch) for ``tp``, or None."""
    try:
        aio = consumer._thread._consumer
        state = aio._subscription.subscription.assignment.state_value(tp)
        if state is None or not state.has_valid_position:
            return None
        position: int = state.position
        return position
    except (AttributeError, AssertionError, KeyError, TypeError):
        return None  # not started, or mid-rebalance: no judgement


def guard_read_offsets(consumer: Any) -> GuardedReadOffsets:
    """Install the guard on Faust's ``consumer`` before its fetcher starts."""
    current = consumer._read_offset
    if isinstance(current, GuardedReadOffsets):
        return current

    def is_stale(tp: Any, offset: int) -> bool:
        position = fetch_position(consumer, tp)
        return position is not None and offset >= position

    guarded = GuardedReadOffsets(is_stale, dict(current))
    hand_over = consumer.callback

    async def callback(message: Any) -> Any:
        key = (message.tp, message.offset)
        if is_stale(*key):
            guarded.dropped.add(key)
            guarded.drops += 1
            log.debug("record %s@%d fetched before a seek back: dropped", *key)
            return None
        guarded.handed_over.add(key)
        return await hand_over(message)

    consumer.callback = callback
    consumer._read_offset = guarded
    return guarded
