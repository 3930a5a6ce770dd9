"""Turning raw records into contract events, or into dead letters that say why not.

``decode_event`` never raises on bad input: it returns an event, a ``DeadLetter``
naming the field, what was expected and where the record came from, or a
``PartialEvent`` (an event applied without an invalid part, and the letter naming it).

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
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Final, Literal, get_args

import msgspec
import orjson

from schemas.events import EVENT_TYPES, Event
from schemas.limits import (
    DEAD_LETTER_PREFIX_BYTES,
    DEFAULT_MAX_RECORD_BYTES,
    MAX_NESTING,
    may_nest_too_deep,
    nesting_depth,
)
from schemas.repair import Dropped, normalise, repair

#: Every reason a record can be dead-lettered for; a small fixed set so it can label metrics.
DeadLetterReason = Literal[
    "invalid_json",
    "not_an_object",
    "unknown_type",
    "invalid_event",
    "future_event",
    "invalid_row",
    #: longer than ``engine.max_record_bytes``: the dead letter keeps a bounded prefix
    "too_large",
    #: objects or arrays nested deeper than ``schemas.limits.MAX_NESTING``
    "too_deep",
    #: applied without the parts named in ``detail`` (a bad line item, a bad trait)
    "partial",
    #: an identity-topic record (engine to engine) that does not decode
    "invalid_internal",
    #: a valid event whose application raised: a bug's trigger, set aside so the rest goes on
    "processing_failed",
]
DEAD_LETTER_REASONS: Final[tuple[str, ...]] = get_args(DeadLetterReason)

_KNOWN_TYPES: Final = ", ".join(sorted(EVENT_TYPES))
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


class DeadLetter(msgspec.Struct, kw_only=True, frozen=True):
    """A record that could not become an event, kept whole with the reason.

    A record refused for its size keeps only its first bytes; ``raw_size`` then says how
    long it was (it is None when ``raw`` is the whole record)."""

    source: str
    position: int
    reason: DeadLetterReason
    detail: str
    field: str | None = None
    raw: str
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"
    raw_size: int | None = None


class PartialEvent(msgspec.Struct, frozen=True):
    """A record applied without some of its parts: the event, and the ``partial`` dead
    letter that names what was dropped (``schemas/repair.py``)."""

    event: Event
    dropped: DeadLetter


class Ignored(msgspec.Struct, frozen=True):
    """A well-formed record of a call the input format has and Rapport does not model (a
    Segment ``page``): counted by ``name`` (the call type, or a track event's name), then
    skipped. Never a dead letter: dead letters are for broken records."""

    name: str


#: What decoding one record gives.
Decoding = Event | DeadLetter | PartialEvent


def events_of(items: Iterable[Decoding | Ignored]) -> Iterator[Event]:
    """The events among decoded records (a partial record's event included)."""
    for item in items:
        if isinstance(item, PartialEvent):
            yield item.event
        elif not isinstance(item, DeadLetter | Ignored):
            yield item


def dead_letter(
    raw: bytes,
    *,
    source: str,
    position: int,
    reason: DeadLetterReason,
    detail: str,
    field: str | None = None,
) -> DeadLetter:
    """Build a dead letter that keeps the original bytes exactly (a prefix of them, with
    the full size, when they are longer than ``DEAD_LETTER_PREFIX_BYTES``)."""
    size = None
    if len(raw) > DEAD_LETTER_PREFIX_BYTES:
        size, raw = len(raw), raw[:DEAD_LETTER_PREFIX_BYTES]
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
        raw_size=size,
    )


def too_large(prefix: bytes, size: int, limit: int, *, source: str, position: int) -> DeadLetter:
    """The dead letter of a record of ``size`` bytes, over ``limit``, of which only
    ``prefix`` was read."""
    letter = dead_letter(
        prefix[:DEAD_LETTER_PREFIX_BYTES],
        source=source,
        position=position,
        reason="too_large",
        detail=(
            f"the record is {size:,} bytes, over the limit of {limit:,} "
            "(setting engine.max_record_bytes); only its first bytes are kept here"
        ),
    )
    return msgspec.structs.replace(letter, raw_size=size)


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
) -> Decoding:
    """Validate an already-parsed JSON object against the contract.

    What is merely spelled differently is normalised first (``usd`` is ``USD``); a record
    with a bad line item or a bad trait is applied without it (``PartialEvent``)."""
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
            detail=f"unknown event type {_shown(kind)}; expected one of: {_KNOWN_TYPES}",
        )
    obj = normalise(obj, cls)
    dropped: list[Dropped] = []
    try:
        try:
            event: Event = msgspec.convert(obj, cls)  # type: ignore[assignment]
        except msgspec.ValidationError:
            obj, dropped = repair(obj, cls)
            if not dropped:
                raise
            event = msgspec.convert(obj, cls)  # type: ignore[assignment]
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
    except Exception as error:
        return dead_letter(
            raw,
            source=source,
            position=position,
            reason="invalid_event",
            detail=f"{kind}: cannot be read: {type(error).__name__}: {error}",
        )
    if latest_allowed is not None and event.occurred_at > latest_allowed:
        return _future(raw, event, source, position, latest_allowed)
    if dropped:
        return PartialEvent(event, _partial(raw, event.type, dropped, source, position))
    return event


def _shown(value: object) -> str:
    """A value for a message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _partial(
    raw: bytes, kind: str, dropped: list[Dropped], source: str, position: int
) -> DeadLetter:
    parts = "; ".join(f"`{path}` ({why})" for path, why in dropped)
    return dead_letter(
        raw,
        source=source,
        position=position,
        reason="partial",
        field=dropped[0][0],
        detail=f"{kind}: applied without {len(dropped)} invalid part(s): {parts}",
    )


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
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Decoding:
    """Decode and validate one JSON record into a contract event.

    Valid records take msgspec's typed decoder (one pass, no intermediate dict);
    a record it rejects is parsed again with orjson to say precisely what is wrong.
    Nothing raises: a record too long or nested too deep is refused before parsing.
    """
    # may_nest_too_deep, inline: this runs for every record
    if len(raw) > max_bytes or raw.count(b"{") + raw.count(b"[") > MAX_NESTING:
        refused = refuse_early(raw, source=source, position=position, max_bytes=max_bytes)
        if refused is not None:
            return refused
    try:
        event: Event = _FAST_DECODER.decode(raw)
    except Exception:
        return diagnose(raw, source=source, position=position, latest_allowed=latest_allowed)
    if latest_allowed is not None and event.occurred_at > latest_allowed:
        return _future(raw, event, source, position, latest_allowed)
    return event


def refuse_early(raw: bytes, *, source: str, position: int, max_bytes: int) -> DeadLetter | None:
    """The dead letter of a record too long or nested too deep to parse, or None."""
    if len(raw) > max_bytes:
        return too_large(raw, len(raw), max_bytes, source=source, position=position)
    if may_nest_too_deep(raw) and (depth := nesting_depth(raw)) > MAX_NESTING:
        return dead_letter(
            raw,
            source=source,
            position=position,
            reason="too_deep",
            detail=f"objects and arrays nest {depth} deep; at most {MAX_NESTING} are accepted",
        )
    return None


def diagnose(
    raw: bytes, *, source: str, position: int, latest_allowed: datetime | None = None
) -> Decoding:
    """The slow path: orjson, then type lookup and per-type validation for a clear reason."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return dead_letter(
            raw,
            source=source,
            position=position,
            reason="invalid_json",
            detail=f"not valid JSON (UTF-8 text): {error}",
        )
    return convert_event(obj, raw, source=source, position=position, latest_allowed=latest_allowed)


def latest_accepted(now: datetime, max_clock_skew: timedelta) -> datetime:
    """The newest event time accepted at ``now``: later ones are dead-lettered as future."""
    return now + max_clock_skew


def encode_event(event: Event) -> bytes:
    """The canonical JSON form of an event (what a producer should send)."""
    return msgspec.json.encode(event)
