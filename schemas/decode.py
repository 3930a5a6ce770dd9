"""Turning raw records into contract events, or into dead letters that say why not.

``decode_event`` never raises on bad input: it returns either an event or a
``DeadLetter`` naming the field, what was expected and where the record came from.

>>> from schemas.decode import decode_event, DeadLetter
>>> bad = decode_event(b'{"type": "order.teleported"}', source="demo.jsonl", position=7)
>>> isinstance(bad, DeadLetter), bad.reason
(True, 'unknown_type')
>>> bad.detail.split(";")[0]
"unknown event type 'order.teleported'"
"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta
from typing import Any, Final, Literal, get_args

import msgspec
import orjson

from schemas.events import EVENT_TYPES, Event

#: Every reason a record can be dead-lettered for; a small fixed set so it can label metrics.
DeadLetterReason = Literal[
    "invalid_json",
    "not_an_object",
    "unknown_type",
    "invalid_event",
    "future_event",
    "invalid_row",
    "unsupported_event",
    #: an identity-topic record (engine to engine) that does not decode
    "invalid_internal",
    #: a valid event whose application raised: a bug's trigger, set aside so the rest goes on
    "processing_failed",
]
DEAD_LETTER_REASONS: Final[tuple[str, ...]] = get_args(DeadLetterReason)

_KNOWN_TYPES: Final = ", ".join(sorted(EVENT_TYPES))
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


class DeadLetter(msgspec.Struct, kw_only=True, frozen=True):
    """A record that could not become an event, kept whole with the reason."""

    source: str
    position: int
    reason: DeadLetterReason
    detail: str
    field: str | None = None
    raw: str
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"


def dead_letter(
    raw: bytes,
    *,
    source: str,
    position: int,
    reason: DeadLetterReason,
    detail: str,
    field: str | None = None,
) -> DeadLetter:
    """Build a dead letter that keeps the original bytes exactly."""
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return DeadLetter(
        source=source,
        position=position,
        reason=reason,
        detail=detail,
        field=field,
        raw=text,
        raw_encoding=encoding,  # type: ignore[arg-type]
    )


def _field_of(message: str) -> tuple[str | None, str]:
    """Split msgspec's "Expected `int`, got `str` - at `$.properties.qty`" into path + text."""
    match = _PATH.search(message)
    if match is None:
        return None, message
    return match.group(1) or None, message[: match.start()]


def convert_event(
    obj: Any,
    raw: bytes,
    *,
    source: str,
    position: int,
    latest_allowed: datetime | None = None,
) -> Event | DeadLetter:
    """Validate an already-parsed JSON object against the contract."""
    if type(obj) is not dict:
        return dead_letter(
            raw,
            source=source,
            position=position,
            reason="not_an_object",
            detail=f"expected a JSON object, got {type(obj).__name__}",
        )
    kind = obj.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return dead_letter(
            raw,
            source=source,
            position=position,
            reason="unknown_type",
            field="type",
            detail=f"unknown event type {kind!r}; expected one of: {_KNOWN_TYPES}",
        )
    try:
        event: Event = msgspec.convert(obj, cls)  # type: ignore[assignment]
    except msgspec.ValidationError as error:
        path, text = _field_of(str(error))
        where = f"`{path}`: " if path else ""
        return dead_letter(
            raw,
            source=source,
            position=position,
            reason="invalid_event",
            field=path,
            detail=f"{kind}: {where}{text}",
        )
    if latest_allowed is not None and event.occurred_at > latest_allowed:
        return _future(raw, event, source, position, latest_allowed)
    return event


def _future(
    raw: bytes, event: Event, source: str, position: int, latest_allowed: datetime
) -> DeadLetter:
    return dead_letter(
        raw,
        source=source,
        position=position,
        reason="future_event",
        field="occurred_at",
        detail=(
            f"occurred_at {event.occurred_at.isoformat()} is after the latest accepted time "
            f"{latest_allowed.isoformat()} (clock + max_clock_skew)"
        ),
    )


_FAST_DECODER: Final = msgspec.json.Decoder(Event)


def decode_event(
    raw: bytes,
    *,
    source: str = "<bytes>",
    position: int = 0,
    latest_allowed: datetime | None = None,
) -> Event | DeadLetter:
    """Decode and validate one JSON record into a contract event.

    Valid records take msgspec's typed decoder (one pass, no intermediate dict);
    a record it rejects is parsed again with orjson to say precisely what is wrong.
    """
    try:
        event: Event = _FAST_DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return diagnose(raw, source=source, position=position)
    if latest_allowed is not None and event.occurred_at > latest_allowed:
        return _future(raw, event, source, position, latest_allowed)
    return event


def diagnose(raw: bytes, *, source: str, position: int) -> DeadLetter | Event:
    """The slow path: orjson, then type lookup and per-type validation for a clear reason."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return dead_letter(
            raw,
            source=source,
            position=position,
            reason="invalid_json",
            detail=f"not valid JSON: {error}",
        )
    return convert_event(obj, raw, source=source, position=position)


def latest_accepted(now: datetime, max_clock_skew: timedelta) -> datetime:
    """The newest event time accepted at ``now``: later ones are dead-lettered as future."""
    return now + max_clock_skew


def encode_event(event: Event) -> bytes:
    """The canonical JSON form of an event (what a producer should send)."""
    return msgspec.json.encode(event)
