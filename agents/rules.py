"""Rule reloads: a changed, valid rule set is swapped in; an invalid one is refused."""

from __future__ import annotations

import asyncio
import logging

from rules.yaml_source import RuleFileError
from streams.worker import Worker

log = logging.getLogger("rapport.agents.rules")
RULES_CHECK_SECONDS = 5.0


def register(worker: Worker) -> None:
    engines = worker.engines

    @worker.app.timer(interval=RULES_CHECK_SECONDS)  # type: ignore[untyped-decorator]
    async def rules() -> None:
        try:
            fresh = worker.watcher.check()
        except RuleFileError as error:
            worker.rules_rejected += 1
            log.error("rules change rejected, keeping %s:\n%s", engines.rules.version, error)
            return
        if fresh is None or fresh.version == engines.rules.version:
            return
        plane = worker.plane
        if plane is None:
            engines.swap_rules(fresh)
        else:  # between two batches of the data plane
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, plane.call, lambda: engines.swap_rules(fresh))
        worker.rules_reloaded += 1
        log.info("rules reloaded: now %s", fresh.version)
