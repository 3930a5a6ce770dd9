"""The delivery stage: each sent action on the actions topic to its channel's adapter."""

from __future__ import annotations

from typing import Any

from faust.types import StreamT

from streams.worker import Worker


def register(worker: Worker) -> None:
    delivery = worker.delivery
    if delivery is None:
        return

    @worker.app.agent(worker.actions)
    async def deliver(stream: StreamT[Any]) -> None:
        # One action at a time, acked when it is delivered or dead-lettered.
        async for event in stream.events():
            await delivery.handle(event.value, worker.dead_letter_action)
