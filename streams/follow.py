"""Following a small one-partition topic from its start (churn models, partition owners)."""

from __future__ import annotations

from collections.abc import Callable


async def follow_topic(
    bootstrap: str,
    topic: str,
    handle: Callable[[bytes, bytes], None],
    caught_up: Callable[[int], None] | None = None,
    partition: int = 0,
) -> None:
    """Read ``topic``'s ``partition`` from its start and then follow it, handing each
    record's key and value to ``handle`` (tombstones are skipped); ``caught_up`` is told,
    once, how many records were there at the start, when they have been read."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        told = caught_up is None
        while True:
            if not told and await consumer.position(tp) >= end:
                told = True
                assert caught_up is not None
                caught_up(end)
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, []):
                if record.value is not None:
                    handle(record.key or b"", record.value)
    finally:
        await consumer.stop()
