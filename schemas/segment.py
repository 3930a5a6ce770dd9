"""Segment / RudderStack e-commerce spec → Rapport contract.

Teams already sending the Segment spec point their stream at Rapport unchanged: each
``track`` or ``identify`` message becomes zero, one or two contract records, or a
reason why it cannot.

>>> msg = {"type": "track", "event": "Product Viewed", "messageId": "m1", "userId": "u1",
...        "timestamp": "2026-02-01T09:00:00Z",
...        "properties": {"product_id": "p1", "category": "shoes", "price": 40}}
>>> [record["type"] for record in segment_to_contract(msg)]
['product.viewed']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from schemas.events import SCHEMA_VERSION


class UnsupportedSegmentEvent(ValueError):
    """A well-formed Segment message that has no Rapport meaning (or lacks what it needs)."""


def _items(products: Any) -> list[dict[str, Any]]:
    if not isinstance(products, list):
        return []
    items = []
    for product in products:
        if not isinstance(product, dict):
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


def _cart_id(props: dict[str, Any], envelope: dict[str, Any]) -> Any:
    """The spec's cart_id is optional; without it a customer has one implicit cart."""
    return (
        props.get("cart_id")
        or props.get("checkout_id")
        or ("implicit:" + str(envelope.get("customer_id") or envelope.get("anonymous_id")))
    )


def _product_viewed(props: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    return {
        "product_id": props.get("product_id") or props.get("sku"),
        "category": props.get("category"),
        "price": props.get("price"),
        "name": props.get("name"),
    }


def _product_added(props: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    return {
        "cart_id": _cart_id(props, env),
        "product_id": props.get("product_id") or props.get("sku"),
        "quantity": props.get("quantity", 1),
        "price": props.get("price"),
        "category": props.get("category"),
    }


def _product_removed(props: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    return {
        "cart_id": _cart_id(props, env),
        "product_id": props.get("product_id") or props.get("sku"),
        "quantity": props.get("quantity", 1),
    }


def _checkout_started(props: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    return {"cart_id": _cart_id(props, env), "value": props.get("value", props.get("revenue"))}


def _order_completed(props: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    items = _items(props.get("products"))
    total = props.get("total", props.get("revenue"))
    if total is None:
        total = round(sum((i["quantity"] or 0) * (i["price"] or 0) for i in items), 2)
    return {
        "order_id": props.get("order_id"),
        "total": total,
        "currency": props.get("currency", "GBP"),
        "cart_id": props.get("cart_id"),
        "items": items,
        "coupon": props.get("coupon"),
    }


def _order_refunded(props: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    items = _items(props.get("products"))
    amount = props.get("total", props.get("revenue"))
    if amount is None:
        amount = round(sum((i["quantity"] or 0) * (i["price"] or 0) for i in items), 2)
    return {"order_id": props.get("order_id"), "amount": amount, "items": items}


def _order_cancelled(props: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": props.get("order_id"), "amount": props.get("total")}


TRACK_EVENTS: Final[
    dict[str, tuple[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]]]
] = {
    "Product Viewed": ("product.viewed", _product_viewed),
    "Product Added": ("cart.item_added", _product_added),
    "Product Removed": ("cart.item_removed", _product_removed),
    "Checkout Started": ("checkout.started", _checkout_started),
    "Order Completed": ("order.placed", _order_completed),
    "Order Refunded": ("order.refunded", _order_refunded),
    "Order Cancelled": ("order.cancelled", _order_cancelled),
}

_TRAITS: Final = {
    "email": "email",
    "phone": "phone",
    "timezone": "time_zone",
    "birthday": "birthday",
    "locale": "locale",
    "country": "country",
}


def _drop_none(props: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in props.items() if value is not None}


def segment_to_contract(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Map one Segment message onto contract records (validated afterwards by the decoder)."""
    kind = message.get("type")
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise UnsupportedSegmentEvent("Segment message needs a non-empty `messageId`")
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
        mapping = TRACK_EVENTS.get(name) if isinstance(name, str) else None
        if mapping is None:
            raise UnsupportedSegmentEvent(
                f"Segment track event {name!r} has no Rapport meaning; supported: {sorted(TRACK_EVENTS)}"
            )
        props = message.get("properties")
        if not isinstance(props, dict):
            props = {}
        contract_type, convert = mapping
        return [
            {
                "type": contract_type,
                "event_id": message_id,
                **envelope,
                "properties": _drop_none(convert(props, envelope)),
            }
        ]
    if kind == "identify":
        traits = message.get("traits") if isinstance(message.get("traits"), dict) else {}
        assert isinstance(traits, dict)
        records: list[dict[str, Any]] = []
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
            ours: traits[theirs]
            for theirs, ours in _TRAITS.items()
            if traits.get(theirs) is not None
        }
        if mapped or not records:
            records.append(
                {
                    "type": "customer.updated",
                    "event_id": message_id,
                    **envelope,
                    "properties": mapped,
                }
            )
        return records
    raise UnsupportedSegmentEvent(
        f"Segment message type {kind!r} is not supported; expected track or identify"
    )
