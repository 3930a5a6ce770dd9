"""Faust agents and timers: thin adapters between Kafka and the partition engines.

``register(worker)`` adds them to the worker's app:

- ``events``: each input record (and each record another partition's engine sent on the
  identity topic) goes to its partition's engine; what comes out is held
  and, every ``BATCH`` records or ``COMPLETE_SECONDS``, published, stored and acknowledged.
  A record is acknowledged only once its event is applied (an event waiting for the
  watermark keeps its offset uncommitted).
- ``clock``: builds the engines of newly assigned partitions from the recovered table and,
  with ``clock: wall``, moves every engine to the wall clock less the allowed lateness, so
  waits fire without new events.
- ``rules``: swaps in a changed, valid rule set; an invalid change keeps the last good one.
- ``deliver`` (when ``delivery.enabled``): hands each sent action on the actions topic to
  its channel's adapter, once (``streams/delivery.py``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from faust.types import StreamT

from rules.yaml_source import RuleFileError
from streams.churn_io import MODEL_KEY, PUBLISH_EVERY, ChurnIO, follow_models

if TYPE_CHECKING:
    from streams.worker import Worker

log = logging.getLogger("rapport.agents")
RULES_CHECK_SECONDS = 5.0
#: Publish, store and acknowledge after this many records, or after this long.
BATCH = 200
COMPLETE_SECONDS = 0.1
#: Publish the churn model at least this often while labels come in.
CHURN_PUBLISH_SECONDS = 2.0


def register(worker: Worker) -> None:
    app, engines = worker.app, worker.engines
    wall_clock = worker.settings.worker.clock == "wall"

    identity_topic = worker.names.identity

    @app.agent(worker.inputs)
    async def events(stream: StreamT[Any]) -> None:
        # Acks are ours: Faust's batching helpers ack every event they hand out, which
        # would commit offsets of events still waiting for the watermark.
        manual: Any = stream.noack()  # type: ignore[attr-defined]
        if worker.churn is not None:
            await worker.churn.caught_up.wait()  # score with the newest model there is
        async for event in manual.events():
            message = event.message
            # A record whose partition a rebalance took away is not ours to apply: left
            # unacked, its owner reads it again from the committed offset.
            while await worker.settle(message):
                async with worker.lock:
                    if not worker.owns(message.partition):
                        continue  # a rebalance began while the lock was held: settle again
                    internal = message.topic == identity_topic
                    position = (message.partition, message.offset, int(internal))
                    worker.track(position, manual, event)
                    source = f"{message.topic}/{message.partition}@{message.offset}"
                    if internal:  # from another partition's engine (state/handoff.py)
                        handled = engines.receive(message.partition, event.value, source, position)
                    else:
                        handled = engines.handle(
                            message.partition,
                            event.value,
                            source,
                            time.time(),
                            position,
                            message.offset,
                        )
                    worker.hold(handled.outputs, event, handled.dead_letters)
                    if worker.held >= BATCH:
                        await worker.complete()
                break

    @app.timer(interval=COMPLETE_SECONDS)  # type: ignore[untyped-decorator]
    async def complete() -> None:
        if worker.held:
            async with worker.lock:
                await worker.complete()

    @app.timer(interval=worker.settings.worker.tick_seconds)  # type: ignore[untyped-decorator]
    async def clock() -> None:
        if not worker.ready:
            return
        async with worker.lock:
            engines.ensure(worker.assigned_partitions())
            if wall_clock:
                for _, fired in engines.tick(time.time()):
                    worker.hold(fired)
            await worker.complete()

    delivery = worker.delivery
    if delivery is not None:

        @app.agent(worker.actions)
        async def deliver(stream: StreamT[Any]) -> None:
            # One action at a time, acked when it is delivered or dead-lettered.
            async for event in stream.events():
                await delivery.handle(event.value, worker.dead_letter_action)

    churn = worker.churn
    if churn is not None:
        register_churn(worker, churn)

    async def revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        gone = sorted(tp.partition for tp in revoked if tp.topic == worker.names.events)
        if gone:
            worker.forget(gone)
            log.info("partitions %s revoked: engines released", gone)
        if churn is not None and any(tp.topic == worker.names.churn_labels for tp in revoked):
            churn.release()
            log.info("churn labels revoked: learner released")

    app.on_partitions_revoked.connect(revoked)  # type: ignore[arg-type]

    @app.timer(interval=RULES_CHECK_SECONDS)  # type: ignore[untyped-decorator]
    async def rules() -> None:
        try:
            fresh = worker.watcher.check()
        except RuleFileError as error:
            worker.rules_rejected += 1
            log.error("rules change rejected, keeping %s:\n%s", engines.rules.version, error)
            return
        if fresh is not None and fresh.version != engines.rules.version:
            engines.swap_rules(fresh)
            worker.rules_reloaded += 1
            log.info("rules reloaded: now %s", fresh.version)


def register_churn(worker: Worker, churn: ChurnIO) -> None:
    """The learner (on whichever worker owns the one labels partition), its publishing, and
    every worker following the models topic (``streams/churn_io.py``)."""
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
            sent = await worker.produce(names.churn_models, MODEL_KEY, raw, 0)
            await sent
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
