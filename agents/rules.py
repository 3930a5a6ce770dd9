"""Rule reloads: a changed, valid rule set is swapped in; an invalid one is refused."""

from __future__ import annotations

import asyncio

from streams.worker import Worker

RULES_CHECK_SECONDS = 5.0


def register(worker: Worker) -> None:
    engines = worker.engines

    @worker.app.timer(interval=RULES_CHECK_SECONDS)  # type: ignore[untyped-decorator]
    async def rules() -> None:
        fresh = worker.reloads.take(worker.watcher.check, engines.rules)
        if fresh is None:
            return
        plane = worker.plane
        if plane is None:
            engines.swap_rules(fresh)
        else:  # between two batches of the data plane
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, plane.call, lambda: engines.swap_rules(fresh))
