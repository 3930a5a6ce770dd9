"""The Segment / RudderStack mapping, on payloads written as Segment's own e-commerce spec
documents them (lower-case currencies, ratings as strings, no cart ids on orders)."""

from typing import Any

import orjson
import pytest

from schemas.decode import DeadLetter, Ignored, PartialEvent, convert_event
from schemas.events import ConsentUpdated, Event, OrderPlaced, ReviewSubmitted, SearchPerformed
from schemas.segment import (
    TRACK_EVENTS,
    InvalidSegmentMessage,
    SegmentDecoding,
    decode_segment,
    segment_to_contract,
)


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
    "Products Searched": ({"query": "blue hotpants"}, "search.performed"),
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
    "Product Reviewed": (
        {"product_id": "507f1f77bcf86cd799439011", "review_id": "kdfjrj39fj", "rating": "5"},
        "review.submitted",
    ),
}


def _decode(message: dict[str, Any]) -> list[SegmentDecoding]:
    return decode_segment(orjson.dumps(message), source="segment.jsonl", position=1)


def _event(message: dict[str, Any]) -> Event:
    (item,) = _decode(message)
    assert not isinstance(item, DeadLetter | Ignored | PartialEvent), item
    return item


def test_every_supported_track_event_has_a_case() -> None:
    assert set(CASES) == set(TRACK_EVENTS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_track_event_maps_onto_a_valid_contract_event(name: str) -> None:
    properties, expected = CASES[name]
    event = _event(_track(name, **properties))
    assert event.type == expected
    assert event.customer_id == "u1"


def test_order_completed_as_segment_documents_it() -> None:
    """The spec's own example: revenue, a lower-case currency, products with sku and price."""
    event = _event(
        _track(
            "Order Completed",
            checkout_id="fksdjfsdjfisjf9sdfjsd9f",
            order_id="50314b8e9bcf000000000000",
            affiliation="Google Store",
            total=27.50,
            subtotal=22.50,
            revenue=25.00,
            shipping=3,
            tax=2,
            discount=2.5,
            coupon="hasbros",
            currency="usd",
            products=[
                {
                    "product_id": "507f1f77bcf86cd799439011",
                    "sku": "45790-32",
                    "name": "Monopoly: 3rd Edition",
                    "price": 19,
                    "quantity": 1,
                    "category": "Games",
                },
                {
                    "product_id": "505bd76785ebb509fc183733",
                    "sku": "46493-32",
                    "name": "Uno Card Game",
                    "price": 3,
                    "quantity": 2,
                    "category": "Games",
                },
            ],
        )
    )
    assert isinstance(event, OrderPlaced)
    assert (event.properties.total, event.properties.currency) == (27.5, "USD")
    assert event.properties.cart_id is None  # the order closes the customer's open carts
    assert [item.quantity for item in event.properties.items] == [1, 2]


def test_product_reviewed_with_a_string_rating_becomes_a_review() -> None:
    event = _event(_track("Product Reviewed", **CASES["Product Reviewed"][0]))
    assert isinstance(event, ReviewSubmitted)
    assert event.properties.rating == 5


def test_products_searched_keeps_the_query() -> None:
    event = _event(_track("Products Searched", query="blue hotpants"))
    assert isinstance(event, SearchPerformed)
    assert event.properties.query == "blue hotpants"


def test_an_order_with_one_bad_product_is_applied_without_it() -> None:
    products = [
        {"product_id": "p1", "price": 19, "quantity": 1},
        {"product_id": "p2", "price": "free", "quantity": 1},
    ]
    (item,) = _decode(_track("Order Completed", order_id="o1", revenue=19, products=products))
    assert isinstance(item, PartialEvent)
    assert [line.product_id for line in item.event.properties.items] == ["p1"]  # type: ignore[union-attr]
    assert item.dropped.field == "properties.items[1]"


def test_an_order_total_from_products_never_multiplies_a_string() -> None:
    products = [{"product_id": "p1", "price": "x" * 10, "quantity": 10**9}]
    (item,) = _decode(_track("Order Completed", order_id="o1", products=products))
    assert isinstance(item, PartialEvent)  # the bad product is dropped, the total is 0
    assert item.event.properties.total == 0  # type: ignore[union-attr]


def test_product_added_without_cart_id_uses_the_customers_implicit_cart() -> None:
    (record,) = segment_to_contract(_track("Product Added", product_id="p1", price=5))  # type: ignore[misc]
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
    assert isinstance(records, list)
    assert [r["type"] for r in records] == ["customer.identified", "customer.updated"]
    assert records[1]["properties"] == {"email": "ann@example.com", "time_zone": "Europe/Paris"}


def test_subscription_traits_become_consent_per_channel() -> None:
    message = {
        "type": "identify",
        "messageId": "m7",
        "userId": "u1",
        "timestamp": "2026-02-01T09:00:00Z",
        "traits": {"email_subscribe": "unsubscribed", "push_subscribe": "opted_in"},
    }
    events = [item for item in _decode(message) if isinstance(item, ConsentUpdated)]
    assert [(e.properties.channel, e.properties.granted) for e in events] == [
        ("email", False),
        ("push", True),
    ]
    assert events[0].event_id == "m7:consent:email"


@pytest.mark.parametrize(
    ("message", "name"),
    [
        ({"type": "page", "name": "Home", "messageId": "m1", "userId": "u1"}, "page"),
        ({"type": "screen", "name": "Cart", "messageId": "m1", "userId": "u1"}, "screen"),
        ({"type": "alias", "previousId": "a", "messageId": "m1", "userId": "u1"}, "alias"),
        ({"type": "group", "groupId": "g", "messageId": "m1", "userId": "u1"}, "group"),
        (_track("Coupon Applied", coupon_id="c1"), "Coupon Applied"),
        (_track("Product Added to Wishlist", product_id="p1"), "Product Added to Wishlist"),
        (_track("Checkout Step Viewed", step=2), "Checkout Step Viewed"),
        (_track("Promotion Clicked", promotion_id="pr"), "Promotion Clicked"),
    ],
)
def test_calls_rapport_does_not_model_are_ignored_by_name_not_dead_lettered(
    message: dict[str, Any], name: str
) -> None:
    assert _decode(message) == [Ignored(name)]


def test_message_without_message_id_is_a_dead_letter() -> None:
    message = _track("Product Viewed", product_id="p1")
    del message["messageId"]
    with pytest.raises(InvalidSegmentMessage, match="messageId"):
        segment_to_contract(message)
    (letter,) = _decode(message)
    assert isinstance(letter, DeadLetter)
    assert (letter.reason, letter.position) == ("invalid_event", 1)


def test_a_contract_record_from_segment_validates_like_any_other() -> None:
    (record,) = segment_to_contract(_track("Product Viewed", product_id="p1"))  # type: ignore[misc]
    assert not isinstance(convert_event(record, b"", source="s", position=1), DeadLetter)
