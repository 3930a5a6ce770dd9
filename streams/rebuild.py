"""A partition's local table brought up to its changelog's end when the data plane is
given the partition (``streams/plane.py``, ``streams/table_stores.py``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition as KafkaPartition

from streams.table_stores import PartitionTable

log = logging.getLogger("rapport.rebuild")
#: A rebuild that reads nothing new for this long gives up (the broker is unreachable).
REBUILD_STALL_SECONDS = 120.0


def rebuild(
    consumer_config: dict[str, Any], topic: str, tables: Mapping[int, PartitionTable]
) -> int:
    """Bring each partition's local table up to its changelog's end; return the records read.

    A table that claims an offset beyond the changelog's end is emptied and read again
    from the start (the topic was made again, or the disk belongs to another cluster)."""
    if not tables:
        return 0
    consumer = Consumer(
        {
            **consumer_config,
            "group.id": f"rebuild-{topic}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        ends: dict[int, int] = {}
        assign = []
        for partition, table in tables.items():
            _, high = consumer.get_watermark_offsets(KafkaPartition(topic, partition), timeout=30)
            if table.offset + 1 > high:
                # The table notes only offsets the broker acknowledged. Tansu reports a
                # partition's end from its last batch's first offset, so a write cut short
                # can make the end look lower than the table: if the table's last record is
                # still there, the table is right; if it is gone, so is what it stood for.
                if _still_there(consumer_config, topic, partition, table.offset):
                    log.warning(
                        "changelog %s[%d] reports its end at %d, below the offset %d the table "
                        "holds, whose record is there: the table is kept",
                        topic,
                        partition,
                        high,
                        table.offset,
                    )
                    continue
                log.warning(
                    "table of partition %d holds changelog offset %d but the changelog ends at "
                    "%d and that record is gone: emptied and read again from the start",
                    partition,
                    table.offset,
                    high,
                )
                table.clear_all()
            if table.offset + 1 < high:
                ends[partition] = high
                assign.append(KafkaPartition(topic, partition, table.offset + 1))
        read = 0
        if assign:
            consumer.assign(assign)
            read = _read_to(consumer, tables, ends)
        return read
    finally:
        consumer.close()


def _still_there(config: dict[str, Any], topic: str, partition: int, offset: int) -> bool:
    """Whether the changelog still holds its record at ``offset``."""
    probe = Consumer(
        {
            **config,
            "group.id": f"rebuild-probe-{topic}",
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
        }
    )
    try:
        probe.assign([KafkaPartition(topic, partition, offset)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = probe.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                return False  # out of range: the log does not reach there
            return message.offset() == offset
        return False
    finally:
        probe.close()


def _read_to(consumer: Consumer, tables: Mapping[int, PartitionTable], ends: dict[int, int]) -> int:
    read, stalled = 0, time.monotonic()
    while ends:
        messages = consumer.consume(1000, 0.5)
        if messages:
            stalled = time.monotonic()
        elif time.monotonic() - stalled > REBUILD_STALL_SECONDS:
            raise KafkaException(f"changelog rebuild stalled with {ends} still to read")
        batches: dict[int, list[tuple[bytes, bytes | None]]] = {}
        newest: dict[int, int] = {}
        for message in messages:
            if message.error() is not None:
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            if partition not in ends:
                continue
            batches.setdefault(partition, []).append((message.key() or b"", message.value()))
            newest[partition] = offset
            read += 1
        for partition, writes in batches.items():
            tables[partition].apply(writes, newest[partition])
            if newest[partition] + 1 >= ends[partition]:
                del ends[partition]
    return read
