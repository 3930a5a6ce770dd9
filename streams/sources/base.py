"""What every input source yields: an event or a dead letter, in input order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from schemas.decode import DeadLetter
from schemas.events import Event

Decoded = Event | DeadLetter


class Source(Protocol):
    def __call__(self) -> Iterator[Decoded]:
        """Yield every record of the input, decoded or dead-lettered."""
