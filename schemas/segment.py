"""Segment / RudderStack e-commerce spec → Rapport contract.

Teams already sending the Segment spec point their stream at Rapport unchanged: each
``track`` or ``identify`` message becomes contract records; a call or event Rapport
does not model (``page``, ``screen``, ``alias``, ``group``, "Coupon Applied", ...) is
``Ignored`` and counted by name, never a dead letter. Dead letters are for broken
messages. The table of what maps to what is in docs/data.md.

>>> msg = {"type": "track", "event": "Product Viewed", "messageId": "m1", "userId": "u1",
...        "timestamp": "2026-02-01T09:00:00Z",
...        "properties": {"product_id": "p1", "category": "shoes", "price": 40}}
>>> [record["type"] for record in segment_to_contract(msg)]
['product.viewed']
>>> segment_to_contract({**msg, "type": "page", "name": "Home"})
Ignored(name='page')
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import orjson

from schemas.decode import (
    DeadLetter,
    Decoding,
    Ignored,
    convert_event,
    dead_letter,
    refuse_early,
)
from schemas.events import SCHEMA_VERSION
from schemas.limits import DEFAULT_MAX_RECORD_BYTES
from schemas.support_events import LANGUAGE_TAG_PATTERN


class InvalidSegmentMessage(ValueError):
    """A message that is not a usable Segment call (no ``messageId``, no ``type``)."""


Props = dict[str, Any]
Converter = Callable[[Props, Props], Props]

#: Call types the spec has and Rapport does not model.
IGNORED_CALLS: Final = frozenset(("page", "screen", "alias", "group"))


def _number(value: Any) -> float | None:
    """A JSON number (or a numeric string, as some sources send), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and len(value) <= 32:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _items(products: Any) -> list[Any]:
    """The spec's ``products`` as contract line items; a bad product stays as it is, so
    the decoder drops it alone and reports it (``schemas/repair.py``)."""
    if not isinstance(products, list):
        return []
    items: list[Any] = []
    for product in products:
        if not isinstance(product, dict):
            items.append(product)
            continue
        items.append(
            {
                "product_id": product.get("product_id") or product.get("sku") or product.get("id"),
                "quantity": product.get("quantity", 1),
                "price": product.get("price", 0),
                "category": product.get("category"),
            }
        )
    return items


def _sum_of(items: list[Any]) -> float:
    """Σ quantity × price over the items whose both are numbers (never a string × int)."""
    total = 0.0
    for item in items:
        if isinstance(item, dict):
            quantity, price = _number(item.get("quantity")), _number(item.get("price"))
            if quantity is not None and price is not None:
                total += quantity * price
    return round(total, 2)


def _cart_id(props: Props, envelope: Props) -> Any:
    """The spec's ``cart_id`` is optional; without it a customer has one implicit cart."""
    return props.get("cart_id") or (
        "implicit:" + str(envelope.get("customer_id") or envelope.get("anonymous_id"))
    )


def _product_viewed(props: Props, env: Props) -> Props:
    return {
        "product_id": props.get("product_id") or props.get("sku"),
        "category": props.get("category"),
        "price": props.get("price"),
        "name": props.get("name"),
    }


def _products_searched(props: Props, env: Props) -> Props:
    return {"query": props.get("query")}


def _product_added(props: Props, env: Props) -> Props:
    return {
        "cart_id": _cart_id(props, env),
        "product_id": props.get("product_id") or props.get("sku"),
        "quantity": props.get("quantity", 1),
        "price": props.get("price"),
        "category": props.get("category"),
    }


def _product_removed(props: Props, env: Props) -> Props:
    return {
        "cart_id": _cart_id(props, env),
        "product_id": props.get("product_id") or props.get("sku"),
        "quantity": props.get("quantity", 1),
    }


def _checkout_started(props: Props, env: Props) -> Props:
    return {"cart_id": _cart_id(props, env), "value": props.get("value", props.get("revenue"))}


def _order_completed(props: Props, env: Props) -> Props:
    items = _items(props.get("products"))
    total = props.get("total", props.get("revenue"))
    if total is None:
        total = _sum_of(items)
    return {
        "order_id": props.get("order_id"),
        "total": total,
        "currency": props.get("currency", "GBP"),
        # No cart_id: the order closes the carts the customer has open (docs/profile.md).
        "cart_id": props.get("cart_id"),
        "items": items,
        "coupon": props.get("coupon"),
        "discount": props.get("discount"),
    }


def _order_refunded(props: Props, env: Props) -> Props:
    items = _items(props.get("products"))
    amount = props.get("total", props.get("revenue"))
    if amount is None:
        amount = _sum_of(items)
    return {"order_id": props.get("order_id"), "amount": amount, "items": items}


def _order_cancelled(props: Props, env: Props) -> Props:
    return {"order_id": props.get("order_id"), "amount": props.get("total")}


def _product_reviewed(props: Props, env: Props) -> Props:
    rating = props.get("rating")
    if isinstance(rating, str) and rating.strip().isdigit() and len(rating) <= 4:
        rating = int(rating)  # the spec's own examples write rating: '5'
    context = env.get("context")
    locale = context.get("locale") if isinstance(context, dict) else None
    if not isinstance(locale, str) or not re.fullmatch(LANGUAGE_TAG_PATTERN, locale):
        locale = None  # a context's odd locale must not cost the review
    return {
        "product_id": props.get("product_id") or props.get("sku"),
        "rating": rating,
        "order_id": props.get("order_id"),
        # The spec's review text; its language, when the sender's context gives a locale.
        "body": props.get("review_body"),
        "language": props.get("language") or locale,
    }


TRACK_EVENTS: Final[dict[str, tuple[str, Converter]]] = {
    "Product Viewed": ("product.viewed", _product_viewed),
    "Products Searched": ("search.performed", _products_searched),
    "Product Added": ("cart.item_added", _product_added),
    "Product Removed": ("cart.item_removed", _product_removed),
    "Checkout Started": ("checkout.started", _checkout_started),
    "Order Completed": ("order.placed", _order_completed),
    "Order Refunded": ("order.refunded", _order_refunded),
    "Order Cancelled": ("order.cancelled", _order_cancelled),
    "Product Reviewed": ("review.submitted", _product_reviewed),
}

_TRAITS: Final = {
    "email": "email",
    "phone": "phone",
    "timezone": "time_zone",
    "birthday": "birthday",
    "locale": "locale",
    "country": "country",
}
#: identify traits that carry a channel's subscription state, with Braze's documented
#: values (``email_subscribe``: "opted_in", "subscribed" or "unsubscribed").
CONSENT_TRAITS: Final = {
    "email_subscribe": "email",
    "sms_subscribe": "sms",
    "push_subscribe": "push",
    "whatsapp_subscribe": "whatsapp",
}
_GRANTED: Final = {"opted_in": True, "subscribed": True, "unsubscribed": False}


def _drop_none(props: Props) -> Props:
    return {key: value for key, value in props.items() if value is not None}


def segment_to_contract(message: Props) -> list[Props] | Ignored:
    """Map one Segment message onto contract records (validated afterwards by the decoder),
    or say it is one Rapport does not model."""
    kind = message.get("type")
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise InvalidSegmentMessage("a Segment message needs a non-empty string `messageId`")
    if not isinstance(kind, str) or not kind:
        raise InvalidSegmentMessage("a Segment message needs a `type` (track, identify, ...)")
    envelope = _drop_none(
        {
            "customer_id": message.get("userId"),
            "anonymous_id": message.get("anonymousId"),
            "occurred_at": message.get("timestamp") or message.get("originalTimestamp"),
            "schema_version": SCHEMA_VERSION,
        }
    )
    if kind == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name:
            raise InvalidSegmentMessage("a Segment track call needs an `event` name")
        mapping = TRACK_EVENTS.get(name)
        if mapping is None:
            return Ignored(name)
        props = message.get("properties")
        if not isinstance(props, dict):
            props = {}
        contract_type, convert = mapping
        return [
            {
                "type": contract_type,
                "event_id": message_id,
                **envelope,
                "properties": _drop_none(
                    convert(props, {**envelope, "context": message.get("context")})
                ),
            }
        ]
    if kind == "identify":
        return _identify(message, message_id, envelope)
    return Ignored(kind if kind in IGNORED_CALLS else "other")


def _identify(message: Props, message_id: str, envelope: Props) -> list[Props]:
    traits = message.get("traits")
    if not isinstance(traits, dict):
        traits = {}
    records: list[Props] = []
    if "customer_id" in envelope and "anonymous_id" in envelope:
        records.append(
            {
                "type": "customer.identified",
                "event_id": message_id + ":identified",
                **envelope,
                "properties": {},
            }
        )
    mapped = {
        ours: traits[theirs] for theirs, ours in _TRAITS.items() if traits.get(theirs) is not None
    }
    consents = [
        (channel, _GRANTED[state])
        for trait, channel in CONSENT_TRAITS.items()
        if isinstance(state := traits.get(trait), str) and state in _GRANTED
    ]
    if mapped or not (records or consents):
        records.append(
            {"type": "customer.updated", "event_id": message_id, **envelope, "properties": mapped}
        )
    for channel, granted in consents:
        records.append(
            {
                "type": "consent.updated",
                "event_id": f"{message_id}:consent:{channel}",
                **envelope,
                "properties": {"channel": channel, "granted": granted, "source": "segment"},
            }
        )
    return records


#: What one Segment message gives.
SegmentDecoding = Decoding | Ignored


def decode_segment(
    raw: bytes,
    *,
    source: str,
    position: int,
    latest_allowed: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> list[SegmentDecoding]:
    """One Segment message (JSON) as contract events, dead letters, or ``Ignored``.

    Nothing raises: the same bounds as the contract's decoder apply first."""
    refused = refuse_early(raw, source=source, position=position, max_bytes=max_bytes)
    if refused is not None:
        return [refused]
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return [_letter(raw, source, position, "invalid_json", f"not valid JSON: {error}")]
    if not isinstance(message, dict):
        return [
            _letter(
                raw,
                source,
                position,
                "not_an_object",
                f"expected a Segment message object, got {type(message).__name__}",
            )
        ]
    try:
        records = segment_to_contract(message)
    except InvalidSegmentMessage as error:
        return [_letter(raw, source, position, "invalid_event", str(error))]
    except Exception as error:
        detail = f"cannot be mapped: {type(error).__name__}: {error}"
        return [_letter(raw, source, position, "invalid_event", detail)]
    if isinstance(records, Ignored):
        return [records]
    return [
        convert_event(record, raw, source=source, position=position, latest_allowed=latest_allowed)
        for record in records
    ]


def _letter(raw: bytes, source: str, position: int, reason: Any, detail: str) -> DeadLetter:
    return dead_letter(raw, source=source, position=position, reason=reason, detail=detail)
