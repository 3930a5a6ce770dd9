"""The peer of ``make bench-worker``: a trivial stateful Quix Streams app.

    build/bench-peers/bin/python bench/peers/quix_app.py BOOTSTRAP INPUT OUTPUT STATE_DIR

Counts each key's records in Quix's RocksDB state (``apply(stateful=True)``) and writes
the count to OUTPUT. Quix Streams is a bench-only dependency: it pins confluent-kafka and
pydantic below the versions Rapport uses, so it runs in a virtualenv of its own
(``build/bench-peers``), never in Rapport's image or runtime dependencies.
"""

from __future__ import annotations

import sys
from typing import Any

from quixstreams import Application  # type: ignore[import-not-found,unused-ignore]


def main() -> None:
    bootstrap, source, output, state_dir = sys.argv[1:5]
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-{source}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    records = app.topic(source, key_deserializer="bytes", value_deserializer="bytes")
    counts = app.topic(output, key_serializer="bytes", value_serializer="json")

    def count(value: Any, state: Any) -> int:
        seen: int = state.get("seen", 0) + 1
        state.set("seen", seen)
        return seen

    app.dataframe(records).apply(count, stateful=True).to_topic(counts)
    app.run()


if __name__ == "__main__":
    main()
