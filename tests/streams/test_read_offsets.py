"""The fetcher guard (streams/read_offsets.py) on a stand-in for Faust's consumer: the
real race is exercised by the takeover test in tests/integration/test_worker.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from streams.read_offsets import guard_read_offsets

TP = ("events", 3)


@dataclass
class _State:
    position: int
    has_valid_position: bool = True


@dataclass
class _Consumer:
    """Faust's consumer as the guard sees it: a callback, read offsets, and aiokafka's
    fetch position behind its thread."""

    state: _State
    handed_over: list[int] = field(default_factory=list)
    _read_offset: dict[Any, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assignment = SimpleNamespace(state_value=lambda tp: self.state)
        subscription = SimpleNamespace(subscription=SimpleNamespace(assignment=assignment))
        self._thread = SimpleNamespace(_consumer=SimpleNamespace(_subscription=subscription))

    async def callback(self, message: Any) -> None:
        self.handed_over.append(message.offset)

    def deliver(self, offset: int) -> None:
        """What Faust's fetcher does per record: hand it over, then set the read offset."""
        asyncio.run(self.callback(SimpleNamespace(tp=TP, offset=offset)))
        self._read_offset[TP] = offset


def test_records_of_the_batch_being_read_are_handed_over_and_move_the_read_offset() -> None:
    consumer = _Consumer(_State(position=110))  # aiokafka returned 100..109
    guard = guard_read_offsets(consumer)
    for offset in range(100, 110):
        consumer.deliver(offset)
    assert consumer.handed_over == list(range(100, 110))
    assert consumer._read_offset[TP] == 109
    assert (guard.drops, guard.refused) == (0, 0)


def test_after_a_seek_back_the_rest_of_the_old_batch_is_dropped_and_the_offset_stays() -> None:
    consumer = _Consumer(_State(position=130))  # a batch of 100..129 is being read
    guard = guard_read_offsets(consumer)
    consumer.deliver(120)
    consumer.state.position = 100  # a rebalance sought the partition back to 100
    consumer._read_offset[TP] = 100  # as Faust's perform_seek does
    for offset in (121, 122):
        consumer.deliver(offset)
    assert consumer.handed_over == [120]
    assert consumer._read_offset[TP] == 100  # 100..119 will be read again, not dropped
    assert guard.drops == 2


def test_a_hand_over_overtaken_by_a_seek_back_does_not_move_the_read_offset() -> None:
    consumer = _Consumer(_State(position=130))
    guard = guard_read_offsets(consumer)
    callback = consumer.callback  # the guard's wrapper

    async def overtaken() -> None:
        await callback(SimpleNamespace(tp=TP, offset=125))
        consumer.state.position = 100  # the seek lands while the record is handed over
        consumer._read_offset[TP] = 100

    asyncio.run(overtaken())
    consumer._read_offset[TP] = 125  # the fetcher's write once the hand-over ends
    assert consumer._read_offset[TP] == 100
    assert guard.refused == 1


def test_explicit_seeks_always_set_the_read_offset() -> None:
    consumer = _Consumer(_State(position=50))
    guard_read_offsets(consumer)
    consumer._read_offset[TP] = 70  # Consumer.seek, not a record: no judgement
    assert consumer._read_offset[TP] == 70
