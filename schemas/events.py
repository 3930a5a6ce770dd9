"""The event contract: one typed model per event kind, sharing one envelope.

Every event is a msgspec ``Struct`` tagged by its ``type`` field, so a decoded
record is already the right class with validated, typed properties:

>>> from schemas.events import ProductViewed
>>> import msgspec
>>> event = msgspec.convert(
...     {"type": "product.viewed", "event_id": "e1", "customer_id": "c1",
...      "occurred_at": "2026-03-01T10:00:00+00:00",
...      "properties": {"product_id": "sku-1", "category": "sneakers", "price": 89.0}},
...     ProductViewed)
>>> event.properties.category
'sneakers'
>>> event.profile_key
'c1'
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import Meta

from schemas.envelope import (
    ANONYMOUS_PREFIX as ANONYMOUS_PREFIX,
    SCHEMA_VERSION as SCHEMA_VERSION,
    Category as Category,
    Channel as Channel,
    Currency as Currency,
    Envelope as Envelope,
    EventTime as EventTime,
    Id as Id,
    Money as Money,
    Priority as Priority,
    ProductName as ProductName,
    Properties as Properties,
    Quantity as Quantity,
)
from schemas.limits import MAX_COUNT, known_time_zone
from schemas.support_events import (
    MAX_BODY_CHARS as MAX_BODY_CHARS,
    MAX_SUBJECT_CHARS as MAX_SUBJECT_CHARS,
    ReviewSubmitted as ReviewSubmitted,
    ReviewSubmittedProperties as ReviewSubmittedProperties,
    SatisfactionRated as SatisfactionRated,
    SatisfactionRatedProperties as SatisfactionRatedProperties,
    TicketOpened as TicketOpened,
    TicketOpenedProperties as TicketOpenedProperties,
    TicketReplied as TicketReplied,
    TicketRepliedProperties as TicketRepliedProperties,
    TicketResolved as TicketResolved,
    TicketResolvedProperties as TicketResolvedProperties,
)

# --- browse -----------------------------------------------------------------------------------


class ProductViewedProperties(Properties, frozen=True):
    product_id: Id
    category: Category | None = None
    price: Money | None = None
    name: ProductName | None = None


class ProductViewed(Envelope, tag="product.viewed", frozen=True):
    properties: ProductViewedProperties


class SearchPerformedProperties(Properties, frozen=True):
    query: Annotated[str, Meta(max_length=512)]
    results_count: Annotated[int, Meta(ge=0, le=MAX_COUNT)] | None = None


class SearchPerformed(Envelope, tag="search.performed", frozen=True):
    properties: SearchPerformedProperties


# --- cart and checkout ------------------------------------------------------------------------


class CartItemAddedProperties(Properties, frozen=True):
    cart_id: Id
    product_id: Id
    price: Money
    quantity: Quantity = 1
    category: Category | None = None
    #: The product's display name, for the messages a cart recovery sends.
    name: ProductName | None = None


class CartItemAdded(Envelope, tag="cart.item_added", frozen=True):
    properties: CartItemAddedProperties


class CartItemRemovedProperties(Properties, frozen=True):
    cart_id: Id
    product_id: Id
    quantity: Quantity = 1


class CartItemRemoved(Envelope, tag="cart.item_removed", frozen=True):
    properties: CartItemRemovedProperties


class CartClearedProperties(Properties, frozen=True):
    cart_id: Id


class CartCleared(Envelope, tag="cart.cleared", frozen=True):
    properties: CartClearedProperties


class CheckoutStartedProperties(Properties, frozen=True):
    cart_id: Id
    value: Money | None = None


class CheckoutStarted(Envelope, tag="checkout.started", frozen=True):
    properties: CheckoutStartedProperties


# --- orders -----------------------------------------------------------------------------------


class LineItem(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    product_id: Id
    quantity: Quantity
    price: Money
    category: Category | None = None


class OrderPlacedProperties(Properties, frozen=True):
    order_id: Id
    total: Money
    currency: Currency = "GBP"
    cart_id: Id | None = None
    items: Annotated[list[LineItem], Meta(max_length=5000)] = []
    #: The coupon code used, and what discounts took off the order in all.
    coupon: Id | None = None
    discount: Money | None = None


class OrderPlaced(Envelope, tag="order.placed", frozen=True):
    properties: OrderPlacedProperties


class OrderCancelledProperties(Properties, frozen=True):
    order_id: Id
    #: The amount no longer owed; when absent the placed order's total is used.
    amount: Money | None = None
    reason: Annotated[str, Meta(max_length=256)] | None = None


class OrderCancelled(Envelope, tag="order.cancelled", frozen=True):
    properties: OrderCancelledProperties


class OrderRefundedProperties(Properties, frozen=True):
    order_id: Id
    amount: Money
    items: Annotated[list[LineItem], Meta(max_length=5000)] = []
    reason: Annotated[str, Meta(max_length=256)] | None = None


class OrderRefunded(Envelope, tag="order.refunded", frozen=True):
    properties: OrderRefundedProperties


# --- loyalty ----------------------------------------------------------------------------------


class PointsRedeemedProperties(Properties, frozen=True):
    #: The shop's id of the redemption: the same id is never spent twice.
    redemption_id: Id
    points: Annotated[int, Meta(ge=1, le=100_000_000)]
    order_id: Id | None = None
    reward: Annotated[str, Meta(max_length=128)] | None = None


class PointsRedeemed(Envelope, tag="points.redeemed", frozen=True):
    properties: PointsRedeemedProperties


class MemberCheckedInProperties(Properties, frozen=True):
    #: The day checked in for, as the shop counts days (its own time zone); when absent,
    #: the UTC date of ``occurred_at``. One check-in per day counts.
    date: date | None = None


class MemberCheckedIn(Envelope, tag="member.checked_in", frozen=True):
    """A daily check-in (签到) in the shop's app: it earns growth value (and points)."""

    properties: MemberCheckedInProperties = MemberCheckedInProperties()


# --- account ----------------------------------------------------------------------------------


class Traits(Properties, frozen=True):
    """Customer attributes; personal contact data is hashed before it reaches a profile."""

    email: Annotated[str, Meta(max_length=320, pattern="^[^@\\s]+@[^@\\s]+$")] | None = None
    phone: Annotated[str, Meta(max_length=32, pattern="^\\+?[0-9 ()-]{5,}$")] | None = None
    time_zone: Annotated[str, Meta(max_length=64)] | None = None
    birthday: date | None = None
    locale: Annotated[str, Meta(max_length=35)] | None = None
    country: Annotated[str, Meta(pattern="^[A-Z]{2}$")] | None = None

    def __post_init__(self) -> None:
        if self.time_zone is not None and not known_time_zone(self.time_zone):
            raise ValueError(f"`time_zone` {self.time_zone!r} is not an IANA time zone name")


class CustomerRegistered(Envelope, tag="customer.registered", frozen=True):
    properties: Traits = Traits()


class CustomerIdentifiedProperties(Properties, frozen=True):
    pass


class CustomerIdentified(Envelope, tag="customer.identified", frozen=True):
    """Links an anonymous visitor to a known customer; both ids are required."""

    properties: CustomerIdentifiedProperties = CustomerIdentifiedProperties()
    order_sensitive: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.customer_id is None or self.anonymous_id is None:
            raise ValueError("customer.identified needs both `customer_id` and `anonymous_id`")
        super().__post_init__()


class CustomerUpdated(Envelope, tag="customer.updated", frozen=True):
    properties: Traits
    order_sensitive: ClassVar[bool] = True


class ConsentUpdatedProperties(Properties, frozen=True):
    channel: Channel
    granted: bool
    source: Annotated[str, Meta(max_length=64)] | None = None


class ConsentUpdated(Envelope, tag="consent.updated", frozen=True):
    properties: ConsentUpdatedProperties
    order_sensitive: ClassVar[bool] = True


# --- messages: what happened to a message after it was sent (delivery feedback) ---------------


class MessageProperties(Properties, frozen=True):
    channel: Channel
    #: The action the message was (``Action.action_id``); None when the provider lost it
    #: (an unsubscribe from a forwarded mail).
    action_id: Id | None = None
    journey_id: Id | None = None


class MessageDelivered(Envelope, tag="message.delivered", frozen=True):
    properties: MessageProperties


class MessageBouncedProperties(MessageProperties, frozen=True, kw_only=True):
    #: ``hard``: the address does not exist or refuses for good; ``soft``: full, later.
    bounce: Literal["hard", "soft"]
    reason: Annotated[str, Meta(max_length=512)] | None = None


class MessageBounced(Envelope, tag="message.bounced", frozen=True):
    properties: MessageBouncedProperties


class MessageComplained(Envelope, tag="message.complained", frozen=True):
    """The recipient marked the message as spam."""

    properties: MessageProperties


class MessageOpened(Envelope, tag="message.opened", frozen=True):
    properties: MessageProperties


class MessageClickedProperties(MessageProperties, frozen=True):
    url: Annotated[str, Meta(max_length=2048)] | None = None


class MessageClicked(Envelope, tag="message.clicked", frozen=True):
    properties: MessageClickedProperties


class MessageUnsubscribed(Envelope, tag="message.unsubscribed", frozen=True):
    """The recipient used the unsubscribe link: consent to the channel is withdrawn."""

    properties: MessageProperties
    order_sensitive: ClassVar[bool] = True


class ErasureRequestedProperties(Properties, frozen=True):
    request_id: Id | None = None


class ErasureRequested(Envelope, tag="customer.erasure_requested", frozen=True):
    properties: ErasureRequestedProperties = ErasureRequestedProperties()
    order_sensitive: ClassVar[bool] = True


Event = (
    ProductViewed
    | SearchPerformed
    | CartItemAdded
    | CartItemRemoved
    | CartCleared
    | CheckoutStarted
    | OrderPlaced
    | OrderCancelled
    | OrderRefunded
    | TicketOpened
    | TicketReplied
    | TicketResolved
    | SatisfactionRated
    | ReviewSubmitted
    | PointsRedeemed
    | MemberCheckedIn
    | CustomerRegistered
    | CustomerIdentified
    | CustomerUpdated
    | ConsentUpdated
    | MessageDelivered
    | MessageBounced
    | MessageComplained
    | MessageOpened
    | MessageClicked
    | MessageUnsubscribed
    | ErasureRequested
)

EVENT_CLASSES: tuple[type[Envelope], ...] = Event.__args__
EVENT_TYPES: dict[str, type[Envelope]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in EVENT_CLASSES
}
