"""Which input offsets may be committed: per topic partition, the records read and the
ones dealt with.

A record is dealt with when its event is applied (or it became a dead letter). An event
that waits for the watermark is read but not dealt with, and everything read after it
stays uncommitted too: Kafka's committed offset is "the next record to read", so a
partition can only be committed up to its first record not yet dealt with. After a
crash the worker reads again from there; the profiles remember which events they have
applied, so nothing is applied twice.

>>> offsets = InputOffsets()
>>> for offset in (5, 6, 7):
...     offsets.read(("events", 0), offset)
>>> offsets.done(("events", 0), 5); offsets.done(("events", 0), 7)
>>> offsets.committable()
{('events', 0): 6}
>>> offsets.done(("events", 0), 6); offsets.committable()
{('events', 0): 8}
>>> offsets.committable()  # nothing new since
{}
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

#: (topic, partition)
TopicPartition = tuple[str, int]


class InputOffsets:
    def __init__(self) -> None:
        #: Per topic partition, the offsets read and not yet committable, in order.
        self._read: dict[TopicPartition, deque[int]] = {}
        self._done: dict[TopicPartition, set[int]] = {}
        #: Per topic partition, the next offset to read once everything read is dealt with.
        self._next: dict[TopicPartition, int] = {}
        #: What ``committable`` last returned, so the same offset is not committed again.
        self._committed: dict[TopicPartition, int] = {}

    def read(self, tp: TopicPartition, offset: int) -> None:
        self._read.setdefault(tp, deque()).append(offset)
        self._next[tp] = offset + 1

    def done(self, tp: TopicPartition, offset: int) -> None:
        self._done.setdefault(tp, set()).add(offset)

    def committable(self) -> dict[TopicPartition, int]:
        """Per topic partition that moved since the last call, the offset to commit: its
        first record read and not dealt with, or the next one to read."""
        moved: dict[TopicPartition, int] = {}
        for tp, offsets in self._read.items():
            done = self._done.get(tp)
            while offsets and done and offsets[0] in done:
                done.discard(offsets.popleft())
            commit = offsets[0] if offsets else self._next[tp]
            if self._committed.get(tp) != commit:
                moved[tp] = self._committed[tp] = commit
        return moved

    def waiting(self) -> int:
        """Records read and not yet dealt with (or dealt with behind one that is not)."""
        return sum(len(offsets) for offsets in self._read.values())

    def read_through(self) -> dict[TopicPartition, int]:
        """Per topic partition, the highest offset read."""
        return {tp: offset - 1 for tp, offset in self._next.items()}

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions given away: their next owner reads from the committed offset."""
        gone = set(partitions)
        for tp in [tp for tp in self._next if tp[1] in gone]:
            self._read.pop(tp, None)
            self._done.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)
