"""Segment / RudderStack spec JSONL: each line mapped onto the contract, then validated."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

import orjson

from schemas.decode import convert_event, dead_letter
from schemas.segment import UnsupportedSegmentEvent, segment_to_contract
from streams.sources.base import Decoded
from streams.sources.files import numbered_lines


def read_segment(
    stream: BinaryIO, source: str, latest_allowed: datetime | None
) -> Iterator[Decoded]:
    for number, line in numbered_lines(stream):
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            yield dead_letter(
                line,
                source=source,
                position=number,
                reason="invalid_json",
                detail=f"not valid JSON: {error}",
            )
            continue
        if not isinstance(message, dict):
            yield dead_letter(
                line,
                source=source,
                position=number,
                reason="not_an_object",
                detail=f"expected a Segment message object, got {type(message).__name__}",
            )
            continue
        try:
            records = segment_to_contract(message)
        except UnsupportedSegmentEvent as error:
            yield dead_letter(
                line, source=source, position=number, reason="unsupported_event", detail=str(error)
            )
            continue
        for record in records:
            yield convert_event(
                record, line, source=source, position=number, latest_allowed=latest_allowed
            )
