"""The delivery stage: each sent action on the actions topic to its channel's adapter.

The actions topic is read in batches with aiokafka (consumer group
``<app_id>-delivery``), not through a Faust agent: Faust's per-record machinery cost as
much as the delivery itself. Within a batch, each profile's actions are delivered in
order, one after the other, and different profiles' side by side (at most
``CONCURRENCY`` at a time); the batch's offsets are committed once every action in it
is delivered, withheld or dead-lettered. An action read again (a rebalance, a restart)
is delivered once: ``Delivery`` claims it in Redis first (``streams/delivery.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from streams.delivery import Delivery
from streams.worker import Worker

log = logging.getLogger("rapport.agents.delivery")
#: Records read per batch, and profiles delivered to at the same time.
BATCH = 500
CONCURRENCY = 32


def register(worker: Worker) -> None:
    delivery = worker.delivery
    if delivery is None:
        return
    settings = worker.settings.worker

    @worker.app.task  # type: ignore[untyped-decorator]
    async def deliver() -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.errors import CommitFailedError, KafkaError

        session_ms = int(settings.session_seconds * 1000)
        consumer = AIOKafkaConsumer(
            worker.names.actions,
            bootstrap_servers=worker.bootstrap,
            group_id=f"{settings.app_id}-delivery",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(session_ms // 10, 500),
            max_poll_interval_ms=max(300_000, session_ms),
        )
        await consumer.start()
        limit = asyncio.Semaphore(CONCURRENCY)
        try:
            while True:
                fetched = await consumer.getmany(timeout_ms=100, max_records=BATCH)
                if not fetched:
                    continue
                await deliver_batch(delivery, worker, fetched, limit)
                offsets = {tp: records[-1].offset + 1 for tp, records in fetched.items()}
                try:
                    await consumer.commit(offsets)
                except (CommitFailedError, KafkaError) as error:
                    log.warning("delivery offsets not committed (%s): read again", error)
        finally:
            await consumer.stop()


async def deliver_batch(
    delivery: Delivery, worker: Worker, fetched: dict[Any, list[Any]], limit: asyncio.Semaphore
) -> None:
    """Deliver a fetched batch: each profile's actions in order, profiles side by side."""
    by_key: defaultdict[bytes, list[bytes]] = defaultdict(list)
    for records in fetched.values():
        for record in records:
            if record.value is not None:
                by_key[record.key or b""].append(record.value)

    async def in_order(values: list[bytes]) -> None:
        async with limit:
            for value in values:
                await delivery.handle(value, worker.dead_letter_action)

    await asyncio.gather(*(in_order(values) for values in by_key.values()))
