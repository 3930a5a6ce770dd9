"""Producing and reading topics in integration tests, with confluent-kafka as real clients do.

Topics are read by assigning every partition from the beginning (no consumer group), so a
test sees exactly what is in a topic, in offset order per partition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


Headers = dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None


def _headers(raw: Headers) -> dict[str, bytes]:
    pairs = raw.items() if isinstance(raw, dict) else raw or []
    return {k: v if isinstance(v, bytes) else (v or "").encode() for k, v in pairs}


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(timeout=30)


def routing_key(line: bytes) -> bytes | None:
    """The key a producer would use: the customer id, else the anonymous id (of a contract
    record, or a Segment message's ``userId`` / ``anonymousId``)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    key = (
        record.get("customer_id")
        or record.get("anonymous_id")
        or record.get("userId")
        or record.get("anonymousId")
    )
    return key.encode() if isinstance(key, str) else None


def produce(
    bootstrap: str, topic: str, lines: Iterable[bytes], per_second: float | None = None
) -> int:
    """Produce ``lines`` keyed as a real producer would; ``per_second`` paces them like a
    live stream (None: as fast as possible, a backlog)."""
    # murmur2: the Java client's partitioner, which the worker's profile lookup routes by.
    config = {"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"}
    producer = Producer({**config, "partitioner": "murmur2_random"})
    count = 0
    started = time.monotonic()
    for line in lines:
        producer.produce(topic, key=routing_key(line), value=line)
        producer.poll(0)
        count += 1
        if per_second is not None and count % 20 == 0:
            ahead = started + count / per_second - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    left = producer.flush(30)
    assert left == 0, f"{left} records not delivered to {topic}"
    return count


def read_topic(
    bootstrap: str,
    topic: str,
    until: Callable[[list[Record]], bool],
    timeout: float = 90.0,
    settle: float = 2.0,
) -> list[Record]:
    """The records of ``topic``, read until ``until`` holds and nothing more came for ``settle``
    seconds (so extra records would be seen too), or until ``timeout``."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "rapport-tests", "enable.auto.commit": False}
    )
    try:
        deadline = time.monotonic() + timeout
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.5)
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Record] = []
        last = time.monotonic()
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                if until(records) and time.monotonic() - last > settle:
                    break
                continue
            last = time.monotonic()
            records.append(
                Record(
                    partition=message.partition() or 0,
                    offset=message.offset() or 0,
                    key=message.key(),
                    value=message.value() or b"",
                    headers=_headers(message.headers()),
                )
            )
        return records
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """Per partition, the offset the broker says the next record will get (ListOffsets)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "rapport-tests"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()
