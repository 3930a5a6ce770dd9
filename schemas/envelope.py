"""What every event shares: the envelope (ids, time, schema version), the base of its
``properties``, and the field types the contract uses (``schemas/events.py`` holds the
kinds)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import Meta

from schemas.limits import MAX_AMOUNT, MAX_QUANTITY

SCHEMA_VERSION = 1

Id = Annotated[str, Meta(min_length=1, max_length=128, description="An opaque identifier.")]
Money = Annotated[
    float,
    Meta(ge=0, le=MAX_AMOUNT, description="An amount in the order currency, at most 10^9."),
]
Quantity = Annotated[int, Meta(ge=1, le=MAX_QUANTITY, description="A positive item count.")]
Category = Annotated[str, Meta(min_length=1, max_length=64)]
ProductName = Annotated[str, Meta(max_length=256)]
Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$", description="ISO 4217 code.")]
Priority = Literal["low", "normal", "high", "urgent"]
Channel = Literal["email", "sms", "push", "whatsapp", "in_app"]
EventTime = Annotated[datetime, Meta(tz=True, description="When it happened, with a time zone.")]

ANONYMOUS_PREFIX = "anon:"


class Properties(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=False, gc=False):
    """Base of every event's ``properties`` object; unknown keys are ignored."""


class Envelope(msgspec.Struct, kw_only=True, frozen=True, tag_field="type", gc=False):
    """Fields every event carries; subclasses add a typed ``properties``."""

    event_id: Id
    occurred_at: EventTime
    customer_id: Id | None = None
    anonymous_id: Id | None = None
    schema_version: Annotated[int, Meta(ge=1, le=SCHEMA_VERSION)] = SCHEMA_VERSION

    #: Event kinds whose ordering relative to others of the same customer matters.
    order_sensitive: ClassVar[bool] = False

    def __post_init__(self) -> None:
        customer_id = self.customer_id
        if customer_id is None:
            if self.anonymous_id is None:
                raise ValueError("either `customer_id` or `anonymous_id` is required")
        elif customer_id.startswith(ANONYMOUS_PREFIX):
            # Visitor profiles are keyed `anon:<anonymous id>`: a customer id of that form
            # would share a profile with a visitor. The key spaces stay apart by refusing it.
            raise ValueError(
                f"`customer_id` may not start with {ANONYMOUS_PREFIX!r}, the prefix of "
                "visitor profiles; send the visitor's id as `anonymous_id`"
            )

    @property
    def type(self) -> str:
        """The event kind, e.g. ``"order.placed"``."""
        return type(self).__struct_config__.tag  # type: ignore[return-value]

    @property
    def profile_key(self) -> str:
        """The key of the profile this event belongs to before identity resolution."""
        if self.customer_id is not None:
            return self.customer_id
        return ANONYMOUS_PREFIX + str(self.anonymous_id)
