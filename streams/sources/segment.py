"""Segment / RudderStack spec JSONL: each line mapped onto the contract, then validated."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

from schemas.decode import DeadLetter
from schemas.segment import decode_segment
from streams.sources.base import Decoded, flattened
from streams.sources.files import numbered_lines


def read_segment(
    stream: BinaryIO, source: str, latest_allowed: datetime | None, max_bytes: int
) -> Iterator[Decoded]:
    for entry in numbered_lines(stream, source, max_bytes):
        if isinstance(entry, DeadLetter):
            yield entry
            continue
        number, line = entry
        for item in decode_segment(
            line, source=source, position=number, latest_allowed=latest_allowed, max_bytes=max_bytes
        ):
            yield from flattened(item)
