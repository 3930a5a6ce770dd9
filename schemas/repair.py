"""Keeping what is valid of a record that is not: normalised spellings, dropped parts.

Two kinds of help, both on the decoder's slow path only (a valid record never gets here):

* ``normalise``: what is merely spelled differently becomes the contract's spelling, with
  no report: a currency ``usd`` is ``USD`` (Segment's own examples write it so), a
  country ``gb`` is ``GB``.
* ``repair``: a part the record can do without is dropped, and reported: one invalid line
  item of an order or refund (the order still happened), one invalid trait of a customer
  (the others are still true), the text of a ticket, reply, rating or review that is too
  long, a language tag that is not one, a sentiment out of -1..1 (the ticket still
  opened, and its SLA clock runs). Anything else invalid refuses the whole record.

>>> from schemas.events import OrderPlaced
>>> order = {"type": "order.placed", "properties": {"order_id": "o1", "total": 5,
...     "currency": "usd", "items": [{"product_id": "p1", "quantity": 0, "price": 5}]}}
>>> normalise(order, OrderPlaced)["properties"]["currency"]
'USD'
>>> fixed, dropped = repair(order, OrderPlaced)
>>> fixed["properties"]["items"], dropped
([], [('properties.items[0]', 'quantity: Expected `int` >= 1')])
>>> ticket = {"type": "support.ticket_opened", "properties": {"ticket_id": "t1",
...     "subject": "Refund", "body": "x" * 30_000, "language": "??"}}
>>> fixed, dropped = repair(ticket, ev.TicketOpened)
>>> sorted(fixed["properties"]), [path for path, _ in dropped]
(['subject', 'ticket_id'], ['properties.body', 'properties.language'])
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from schemas import events as ev

#: (path of the dropped part, why it was invalid)
Dropped = tuple[str, str]

_CODE: Final = re.compile(r"[A-Za-z]{2,3}")
#: Event kinds whose ``properties.<key>`` is an upper-case code, and the key.
_UPPER_CASE: Final[dict[type, tuple[str, ...]]] = {
    ev.OrderPlaced: ("currency",),
    ev.CustomerRegistered: ("country",),
    ev.CustomerUpdated: ("country",),
}
#: Event kinds whose ``properties.items`` line items can be dropped one by one.
_WITH_ITEMS: Final = frozenset((ev.OrderPlaced, ev.OrderRefunded))
#: Event kinds whose traits can be dropped one by one.
_WITH_TRAITS: Final = frozenset((ev.CustomerRegistered, ev.CustomerUpdated))
_TRAIT_NAMES: Final = tuple(field.name for field in msgspec.structs.fields(ev.Traits))
#: Event kinds whose optional text fields can be dropped one by one, and their properties.
_TEXT_FIELDS: Final = ("subject", "body", "title", "comment", "language", "sentiment")
_WITH_TEXT: Final[dict[type, type]] = {
    ev.TicketOpened: ev.TicketOpenedProperties,
    ev.TicketReplied: ev.TicketRepliedProperties,
    ev.SatisfactionRated: ev.SatisfactionRatedProperties,
    ev.ReviewSubmitted: ev.ReviewSubmittedProperties,
}
_PATH: Final = re.compile(r" - at `\$\.?([^`]*)`$")


def normalise(record: dict[str, Any], cls: type) -> dict[str, Any]:
    """``record`` with its codes in upper case (a shallow copy when something changed)."""
    keys = _UPPER_CASE.get(cls)
    properties = record.get("properties")
    if keys is None or type(properties) is not dict:
        return record
    changed = {
        key: value.upper()
        for key in keys
        if isinstance(value := properties.get(key), str)
        and _CODE.fullmatch(value)
        and not value.isupper()
    }
    if not changed:
        return record
    return {**record, "properties": {**properties, **changed}}


def repair(record: dict[str, Any], cls: type) -> tuple[dict[str, Any], list[Dropped]]:
    """``record`` without its invalid droppable parts, and which they were (none dropped:
    the record is returned as it was, and its error is the whole record's)."""
    properties = record.get("properties")
    if type(properties) is not dict:
        return record, []
    dropped: list[Dropped] = []
    kept = dict(properties)
    if cls in _WITH_ITEMS and type(items := properties.get("items")) is list:
        good = []
        for index, item in enumerate(items):
            why = _invalid(item, ev.LineItem)
            if why is None:
                good.append(item)
            else:
                dropped.append((f"properties.items[{index}]", why))
        kept["items"] = good
    if cls in _WITH_TRAITS:
        for name in _TRAIT_NAMES:
            if name in properties:
                why = _invalid({name: properties[name]}, ev.Traits)
                if why is not None:
                    dropped.append((f"properties.{name}", why))
                    del kept[name]
        if dropped and not any(name in kept for name in _TRAIT_NAMES):
            return record, []  # nothing valid left to apply: refuse the record
    props_cls = _WITH_TEXT.get(cls)
    if props_cls is not None:
        for _ in _TEXT_FIELDS:  # one invalid field at a time, as the error names it
            problem = _invalid(kept, props_cls)
            if problem is None:
                break
            name, _, detail = problem.partition(": ")
            if name not in _TEXT_FIELDS or name not in kept:
                break
            dropped.append((f"properties.{name}", detail))
            del kept[name]
    if not dropped:
        return record, []
    return {**record, "properties": kept}, dropped


def _invalid(value: Any, cls: type) -> str | None:
    """Why ``value`` is not a valid ``cls``, or None."""
    try:
        msgspec.convert(value, cls)
    except msgspec.ValidationError as error:
        message = str(error)
        match = _PATH.search(message)
        if match is None:
            return message
        path = match.group(1)
        return f"{path}: {message[: match.start()]}" if path else message[: match.start()]
    return None
