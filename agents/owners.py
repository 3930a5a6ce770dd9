"""Which worker owns which input partition: every worker follows ``<prefix>owners``.

The data plane writes ``partition -> its web address`` there when it is given partitions
(``streams/plane.py``); a lookup asked of a worker that does not own the key's partition
is forwarded to the address found here (``streams/web.py``)."""

from __future__ import annotations

from streams.follow import follow_topic
from streams.worker import Worker


def register(worker: Worker) -> None:
    if not worker.settings.worker.web_port:
        return

    def owner(key: bytes, value: bytes) -> None:
        if key.isdigit():
            worker.owners[int(key)] = value.decode()

    @worker.app.task  # type: ignore[untyped-decorator]
    async def partition_owners() -> None:
        await follow_topic(worker.bootstrap, worker.names.owners, owner)
