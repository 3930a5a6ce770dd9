"""Moving a visitor's profile to the customer's home when the two live apart.

In one process (replay) a visitor and the customer they identify as share one store, and
the engine merges them in place. A worker keeps profiles per input partition, and input
is keyed by customer id or, for a visitor, by anonymous id: the two can be homed on
different partitions, each with its own engine. The engines then talk through three
records, which the worker carries on the ``<prefix>identity`` topic (keyed by
``route_key``, so each lands on the partition that owns it):

1. the customer's engine applies an event that names both ids, finds the visitor homed
   elsewhere, links the two, holds the event and every later one of the customer
   ("parks" them), and sends a ``HandoffRequest`` to the visitor's home;
2. the visitor's engine, at the request's event time (after every earlier event of the
   visitor), removes the visitor's profile, links the visitor to the customer and answers
   with a ``Handoff`` carrying the profile (None if it was handed off before);
3. the customer's engine merges the profile, then applies the parked events in order, so
   the customer ends up exactly as if both had always shared a store.

A visitor's event that reaches its old home after the link is sent on as a ``Forward``.

>>> routing_key("anon:a1"), routing_key("c1")
('a1', 'c1')
>>> request = HandoffRequest(anonymous_key="anon:a1", customer_key="c1", at=1.0, cause="e7")
>>> decode_internal(encode_internal(request)) == request, request.route_key
(True, 'anon:a1')
"""

from __future__ import annotations

import msgspec

from schemas import events as ev
from schemas.events import ANONYMOUS_PREFIX
from state.profile import Profile


def routing_key(profile_key: str) -> str:
    """The record key producers use for a profile: the customer id, or the bare anonymous id."""
    return profile_key.removeprefix(ANONYMOUS_PREFIX)


class HandoffRequest(
    msgspec.Struct, kw_only=True, frozen=True, tag="handoff_request", tag_field="record"
):
    """The customer's engine asks the visitor's home for the visitor's profile."""

    anonymous_key: str
    customer_key: str
    #: Event time of the identifying event: the visitor's events up to it go along.
    at: float
    #: Id of the identifying event.
    cause: str

    @property
    def route_key(self) -> str:
        return self.anonymous_key


class Handoff(msgspec.Struct, kw_only=True, frozen=True, tag="handoff", tag_field="record"):
    """The visitor's profile on its way to the customer's home (None: nothing to move)."""

    anonymous_key: str
    customer_key: str
    at: float
    cause: str
    profile: Profile | None = None

    @property
    def route_key(self) -> str:
        return self.customer_key


class Forward(msgspec.Struct, kw_only=True, frozen=True, tag="forward", tag_field="record"):
    """An event read on a partition that no longer (or never) homes its profile."""

    #: The profile key whose home must apply the event.
    to: str
    event: ev.Event

    @property
    def route_key(self) -> str:
        return self.to


#: What engines send each other through the identity topic.
Internal = HandoffRequest | Handoff | Forward
INTERNAL_TYPES = (HandoffRequest, Handoff, Forward)

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Internal)


def encode_internal(record: Internal) -> bytes:
    return _ENCODER.encode(record)


def decode_internal(raw: bytes) -> Internal:
    """Decode an identity-topic record; raises ``msgspec.DecodeError`` or ``ValidationError``."""
    record: Internal = _DECODER.decode(raw)
    return record
