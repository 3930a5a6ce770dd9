"""A minimal Faust app for ``bench/worker_options.py``: counts each key's records in a dict.

    python bench/peers/faust_app.py MODE BOOTSTRAP INPUT OUTPUT COUNT DATA_DIR worker -l warn

``MODE`` ``agent``: one record at a time (``async for``), as Rapport's worker read its
input before issue 18; ``take``: batches of up to 1,000 records (``Stream.take``). Once it
has counted ``COUNT`` records after the warm-up record, it writes one record to OUTPUT.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import faust

MODE, BOOTSTRAP, SOURCE, OUTPUT, COUNT, DATA_DIR = sys.argv[1:7]
sys.argv = [sys.argv[0], *sys.argv[7:]]
app = faust.App(
    f"options-{SOURCE}",
    broker=f"kafka://{BOOTSTRAP}",
    store="memory://",
    datadir=DATA_DIR,
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
)
source = app.topic(SOURCE, key_serializer="raw", value_serializer="raw")
output = app.topic(OUTPUT, key_serializer="raw", value_serializer="raw")
counts: Counter[bytes] = Counter()
seen = [0]


async def counted(key: bytes | None) -> None:
    counts[key or b""] += 1
    seen[0] += 1
    if seen[0] in (1, int(COUNT) + 1):  # the warm-up record, then the last one
        await output.send(key=b"done", value=str(seen[0]).encode())


if MODE == "agent":

    @app.agent(source)
    async def per_record(stream: Any) -> None:
        async for event in stream.events():
            await counted(event.key)

else:

    @app.agent(source)
    async def batches(stream: Any) -> None:
        async for events in stream.take_events(1000, within=0.05):
            for event in events:
                await counted(event.key)


if __name__ == "__main__":
    app.main()
