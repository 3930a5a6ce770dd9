"""What a rule may read of an event: each property of its kind, with a typical value,
for type-checking conditions and payloads on ``event.<property>`` when rules load.

>>> from schemas.events import TicketOpened
>>> props = properties_of(TicketOpened)
>>> props["priority"], props["sentiment"], props["is_complaint"]
('low', 1.5, True)
"""

from __future__ import annotations

import types
import typing
from typing import Any

import msgspec

from schemas.events import Envelope


def properties_of(cls: type[Envelope]) -> dict[str, Any]:
    """Property name -> a typical value, for type-checking conditions on ``event``."""
    props_cls = typing.get_type_hints(cls)["properties"]
    return {f.name: _sample(f.type) for f in msgspec.structs.fields(props_cls)}


def _sample(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _sample(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _sample(options[0])
    if origin is list:
        return []
    samples: dict[Any, Any] = {str: "x", int: 1, float: 1.5, bool: True}
    return samples.get(annotation, "x")
