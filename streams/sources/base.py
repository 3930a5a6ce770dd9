"""What every input source yields, in input order: an event, a dead letter, or a record
the format has and Rapport does not model (``Ignored``, counted by name)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from schemas.decode import DeadLetter, Ignored
from schemas.events import Event

Decoded = Event | DeadLetter | Ignored


class Source(Protocol):
    def __call__(self) -> Iterator[Decoded]:
        """Yield every record of the input, decoded, dead-lettered or ignored."""
