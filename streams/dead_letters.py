"""Dead letters the engine gives: valid events whose application raised.

Bad input is refused when it is decoded (``schemas/decode.py``). An event that passes
and then makes the engine raise is a bug's trigger; the engine sets it aside
(``Engine.drain_failed``) and goes on, and both runners dead-letter it with the error
under reason ``processing_failed``, so it can be replayed once the bug is fixed.
"""

from __future__ import annotations

import msgspec

from engine import Engine
from schemas.decode import DeadLetter, dead_letter
from streams.edge_counts import EdgeCounts


def failed_letters(engine: Engine, counts: EdgeCounts) -> list[DeadLetter]:
    """Dead letters for the events ``engine`` set aside because applying them raised; the
    record is the event as decoded (its original bytes may be long gone)."""
    letters = []
    for event, error in engine.drain_failed():
        letter = dead_letter(
            msgspec.json.encode(event),
            source=f"engine/{event.event_id}",
            position=0,
            reason="processing_failed",
            detail=error,
        )
        counts.count_dead(letter.reason)
        letters.append(letter)
    return letters
