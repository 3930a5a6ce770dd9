"""What every input source yields, in input order: an event, a dead letter, or a record
the format has and Rapport does not model (``Ignored``, counted by name)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from schemas.decode import DeadLetter, Decoding, Ignored, PartialEvent
from schemas.events import Event

Decoded = Event | DeadLetter | Ignored


def flattened(item: Decoding | Ignored) -> Iterator[Decoded]:
    """One decoded record as what a source yields: a partial record is its dead letter
    (naming what was dropped), then its event."""
    if isinstance(item, PartialEvent):
        yield item.dropped
        yield item.event
    else:
        yield item


class Source(Protocol):
    def __call__(self) -> Iterator[Decoded]:
        """Yield every record of the input, decoded, dead-lettered or ignored."""
