"""Contract JSONL: one Rapport event per line."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

from schemas.decode import decode_event
from streams.sources.base import Decoded
from streams.sources.files import numbered_lines


def read_contract(
    stream: BinaryIO, source: str, latest_allowed: datetime | None
) -> Iterator[Decoded]:
    for number, line in numbered_lines(stream):
        yield decode_event(line, source=source, position=number, latest_allowed=latest_allowed)
