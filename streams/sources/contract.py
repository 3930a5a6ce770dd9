"""Contract JSONL: one Rapport event per line."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

from schemas.decode import DeadLetter, PartialEvent, decode_event
from streams.sources.base import Decoded, flattened
from streams.sources.files import numbered_lines


def read_contract(
    stream: BinaryIO, source: str, latest_allowed: datetime | None, max_bytes: int
) -> Iterator[Decoded]:
    for entry in numbered_lines(stream, source, max_bytes):
        if isinstance(entry, DeadLetter):
            yield entry
            continue
        number, line = entry
        item = decode_event(
            line,
            source=source,
            position=number,
            latest_allowed=latest_allowed,
            max_bytes=max_bytes,
        )
        if isinstance(item, PartialEvent):
            yield from flattened(item)
        else:
            yield item  # the common case, without a generator
