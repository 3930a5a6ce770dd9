"""Faust agents and timers: thin adapters between Kafka and the partition engines.

``register(worker)`` adds them to the worker's app:

- ``events``: every input record goes to its partition's engine; outputs are published,
  invalid records go to the dead-letter topic with the reason in headers.
- ``clock`` (with ``clock: wall``): moves every engine to the wall clock less the allowed
  lateness, so waits fire without new events.
- ``rules``: swaps in a changed, valid rule set; an invalid change keeps the last good one.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from faust.types import StreamT

from rules.yaml_source import RuleFileError

if TYPE_CHECKING:
    from streams.worker import Worker

log = logging.getLogger("rapport.agents")
RULES_CHECK_SECONDS = 5.0


def register(worker: Worker) -> None:
    app, engines = worker.app, worker.engines

    @app.agent(worker.events)
    async def events(stream: StreamT[Any]) -> None:
        async for event in stream.events():
            message = event.message
            position = f"{message.topic}/{message.partition}@{message.offset}"
            handled = engines.handle(message.partition, event.value, position, time.time())
            if handled.dead_letter is not None:
                await worker.dead_letter(event.value, event.key, handled.dead_letter)
            elif handled.outputs:
                await worker.publish(handled.outputs)

    if worker.settings.worker.clock == "wall":

        @app.timer(interval=worker.settings.worker.tick_seconds)  # type: ignore[untyped-decorator]
        async def clock() -> None:
            for _, outputs in engines.tick(time.time()):
                await worker.publish(outputs)

    @app.timer(interval=RULES_CHECK_SECONDS)  # type: ignore[untyped-decorator]
    async def rules() -> None:
        try:
            fresh = worker.watcher.check()
        except RuleFileError as error:
            log.error("rules change rejected, keeping %s:\n%s", engines.rules.version, error)
            return
        if fresh is not None and fresh.version != engines.rules.version:
            engines.swap_rules(fresh)
            log.info("rules reloaded: now %s", fresh.version)
