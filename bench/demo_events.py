"""The generator's events, decoded once, for benchmarks that time the engine on them."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.decode import DeadLetter, PartialEvent, decode_event
from schemas.events import Event
from streams.generator import GeneratorConfig, generate_stream

#: Generated streams end before this: no event is refused as from the future.
LATEST = datetime(2030, 1, 1, tzinfo=UTC)


def decoded_events(config: GeneratorConfig) -> list[Event]:
    """Every valid event of the stream ``config`` makes, decoded (partial ones repaired)."""
    events: list[Event] = []
    for number, line in enumerate(generate_stream(config), start=1):
        item = decode_event(line, source="bench", position=number, latest_allowed=LATEST)
        if isinstance(item, PartialEvent):
            item = item.event
        if not isinstance(item, DeadLetter):
            events.append(item)
    return events
