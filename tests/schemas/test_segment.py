from typing import Any

import orjson
import pytest

from schemas.decode import DeadLetter, convert_event
from schemas.segment import TRACK_EVENTS, UnsupportedSegmentEvent, segment_to_contract


def _track(name: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": name,
        "messageId": "m1",
        "userId": "u1",
        "anonymousId": None,
        "timestamp": "2026-02-01T09:00:00Z",
        "properties": properties,
    }


CASES: dict[str, tuple[dict[str, Any], str]] = {
    "Product Viewed": ({"product_id": "p1", "category": "shoes", "price": 40}, "product.viewed"),
    "Product Added": (
        {"cart_id": "k1", "product_id": "p1", "quantity": 2, "price": 40},
        "cart.item_added",
    ),
    "Product Removed": ({"cart_id": "k1", "product_id": "p1", "quantity": 1}, "cart.item_removed"),
    "Checkout Started": ({"cart_id": "k1", "value": 80}, "checkout.started"),
    "Order Completed": (
        {
            "order_id": "o1",
            "total": 80,
            "currency": "EUR",
            "products": [{"product_id": "p1", "quantity": 2, "price": 40}],
        },
        "order.placed",
    ),
    "Order Refunded": ({"order_id": "o1", "total": 40}, "order.refunded"),
    "Order Cancelled": ({"order_id": "o1"}, "order.cancelled"),
}


def test_every_supported_track_event_has_a_case() -> None:
    assert set(CASES) == set(TRACK_EVENTS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_track_event_maps_onto_a_valid_contract_event(name: str) -> None:
    properties, expected = CASES[name]
    (record,) = segment_to_contract(_track(name, **properties))
    event = convert_event(record, orjson.dumps(record), source="s", position=1)
    assert not isinstance(event, DeadLetter), event
    assert event.type == expected
    assert event.customer_id == "u1"


def test_order_completed_keeps_line_items_and_currency() -> None:
    (record,) = segment_to_contract(_track("Order Completed", **CASES["Order Completed"][0]))
    event = convert_event(record, b"", source="s", position=1)
    assert not isinstance(event, DeadLetter)
    assert event.properties.currency == "EUR"  # type: ignore[union-attr]
    assert event.properties.items[0].quantity == 2  # type: ignore[union-attr]


def test_product_added_without_cart_id_uses_the_customers_implicit_cart() -> None:
    (record,) = segment_to_contract(_track("Product Added", product_id="p1", price=5))
    assert record["properties"]["cart_id"] == "implicit:u1"


def test_identify_with_anonymous_id_links_and_updates_traits() -> None:
    message = {
        "type": "identify",
        "messageId": "m9",
        "userId": "u1",
        "anonymousId": "a1",
        "timestamp": "2026-02-01T09:00:00Z",
        "traits": {"email": "ann@example.com", "timezone": "Europe/Paris"},
    }
    records = segment_to_contract(message)
    assert [r["type"] for r in records] == ["customer.identified", "customer.updated"]
    assert records[1]["properties"] == {"email": "ann@example.com", "time_zone": "Europe/Paris"}


def test_unsupported_track_event_says_which_events_are_supported() -> None:
    with pytest.raises(UnsupportedSegmentEvent, match="Product Viewed"):
        segment_to_contract(_track("Coupon Applied"))


def test_message_without_message_id_is_rejected() -> None:
    message = _track("Product Viewed", product_id="p1")
    del message["messageId"]
    with pytest.raises(UnsupportedSegmentEvent, match="messageId"):
        segment_to_contract(message)
