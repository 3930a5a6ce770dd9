"""The churn model in the worker: the one learner, its publishing, and every worker
following the models topic (``streams/churn_io.py``)."""

from __future__ import annotations

import logging
from typing import Any

from faust.types import StreamT

from streams.churn_io import MODEL_KEY, PUBLISH_EVERY, follow_models
from streams.worker import Worker

log = logging.getLogger("rapport.agents.churn")
#: Publish the churn model at least this often while labels come in.
CHURN_PUBLISH_SECONDS = 2.0


def register(worker: Worker) -> None:
    churn = worker.churn
    if churn is None:
        return
    app, names = worker.app, worker.names

    @app.agent(worker.churn_labels)
    async def churn_learner(stream: StreamT[Any]) -> None:
        manual: Any = stream.noack()  # type: ignore[attr-defined]
        await churn.caught_up.wait()  # restore from the newest model there is
        async for event in manual.events():
            async with churn.lock:
                churn.learn(event.value, event.message.offset)
                churn.held.append((manual, event))
                if len(churn.held) >= PUBLISH_EVERY:
                    await publish()

    async def publish() -> None:
        raw = churn.record()
        if raw is not None:
            await worker.produce(names.churn_models, MODEL_KEY, raw, 0)
            churn.published(raw)
        held, churn.held = churn.held, []
        for stream, event in held:
            await stream.ack(event)

    @app.timer(interval=CHURN_PUBLISH_SECONDS)  # type: ignore[untyped-decorator]
    async def churn_publish() -> None:
        if churn.held:
            async with churn.lock:
                await publish()

    @app.task  # type: ignore[untyped-decorator]
    async def churn_follow() -> None:
        await worker.churn_models.maybe_declare()
        await follow_models(worker.settings.worker.broker, names.churn_models, churn)

    async def revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        if any(tp.topic == names.churn_labels for tp in revoked):
            churn.release()
            log.info("churn labels revoked: learner released")

    app.on_partitions_revoked.connect(revoked)  # type: ignore[arg-type]
