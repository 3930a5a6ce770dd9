"""A Segment / RudderStack stream for tests: the generator's contract stream written as a
Segment source would send it (documented spellings: lower-case currencies, string
ratings, orders without a cart id, page calls between views). Support events have no
Segment counterpart and are left out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson


def _ids(record: dict[str, Any]) -> dict[str, Any]:
    ids = {"userId": record.get("customer_id"), "anonymousId": record.get("anonymous_id")}
    return {key: value for key, value in ids.items() if value is not None}


def _products(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"product_id": item["product_id"], "price": item["price"], "quantity": item["quantity"]}
        for item in items
    ]


def _track(record: dict[str, Any], name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "track",
        "event": name,
        "messageId": record["event_id"],
        "timestamp": record["occurred_at"],
        "properties": properties,
        **_ids(record),
    }


def _identify(record: dict[str, Any], traits: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": record["event_id"],
        "timestamp": record["occurred_at"],
        "traits": traits,
        **_ids(record),
    }


def to_segment(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The Segment messages a source would send for one contract record."""
    kind, props = record["type"], record["properties"]
    if kind == "product.viewed":
        page = {
            "type": "page",
            "name": "Product",
            "messageId": record["event_id"] + ":page",
            "timestamp": record["occurred_at"],
            **_ids(record),
        }
        return [page, _track(record, "Product Viewed", props)]
    if kind == "search.performed":
        return [_track(record, "Products Searched", {"query": props["query"]})]
    if kind == "cart.item_added":
        return [_track(record, "Product Added", props)]
    if kind == "cart.item_removed":
        return [_track(record, "Product Removed", props)]
    if kind == "checkout.started":
        return [_track(record, "Checkout Started", props)]
    if kind == "order.placed":
        order = {
            "order_id": props["order_id"],
            "total": props["total"],
            "currency": props.get("currency", "GBP").lower(),
            "products": _products(props.get("items", [])),
        }
        return [_track(record, "Order Completed", order)]
    if kind == "order.refunded":
        refund = {"order_id": props["order_id"], "total": props["amount"]}
        return [_track(record, "Order Refunded", refund)]
    if kind == "order.cancelled":
        return [_track(record, "Order Cancelled", {"order_id": props["order_id"]})]
    if kind == "review.submitted":
        review = {"product_id": props["product_id"], "rating": str(props["rating"])}
        return [_track(record, "Product Reviewed", review)]
    if kind in ("customer.registered", "customer.updated"):
        traits = {("timezone" if k == "time_zone" else k): v for k, v in props.items()}
        return [_identify(record, traits)]
    if kind == "customer.identified":
        return [_identify(record, {})]
    if kind == "consent.updated" and props["channel"] in ("email", "sms", "push", "whatsapp"):
        state = "subscribed" if props["granted"] else "unsubscribed"
        return [_identify(record, {f"{props['channel']}_subscribe": state})]
    return []


def segment_lines(contract_lines: Iterable[bytes]) -> Iterator[bytes]:
    """Each valid contract line as Segment messages; malformed lines pass as they are."""
    for line in contract_lines:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield line
            continue
        if not isinstance(record, dict) or "properties" not in record or "type" not in record:
            yield line
            continue
        try:
            messages = to_segment(record)
        except (KeyError, TypeError, AttributeError):
            yield line  # a malformed record: sent as it is, to be dead-lettered
            continue
        for message in messages:
            yield orjson.dumps(message)
