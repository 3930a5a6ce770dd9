"""The task that hosts the data plane in the Faust app (``streams/plane.py``)."""

from __future__ import annotations

import asyncio
import logging

from streams.worker import Worker

log = logging.getLogger("rapport.agents.plane")


def register(worker: Worker) -> None:
    app = worker.app

    @app.task  # type: ignore[untyped-decorator]
    async def data_plane() -> None:
        churn = worker.churn
        if churn is not None:
            await churn.caught_up.wait()  # score with the newest model there is
        loop = asyncio.get_running_loop()
        failed: asyncio.Future[BaseException] = loop.create_future()

        def fail(error: BaseException) -> None:
            if not failed.done():
                failed.set_result(error)

        def on_failure(error: BaseException) -> None:
            loop.call_soon_threadsafe(fail, error)

        plane = await loop.run_in_executor(None, worker.start_plane, loop, on_failure)
        try:
            error = await failed
        finally:
            # A stop (or a failure): finish and commit the batch under way, leave the group.
            await loop.run_in_executor(None, plane.stop)
            if worker.plane_redis is not None:
                worker.plane_redis.close()
        log.error("the data plane failed, stopping the worker: %s", error)
        await app.crash(error)
