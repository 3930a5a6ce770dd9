from datetime import UTC, datetime

import orjson
import pytest

from schemas.decode import DeadLetter, decode_event, encode_event
from schemas.events import CartItemAdded
from schemas.jsonschema_export import SCHEMA_DIR, render_schemas
from tests.builders import added

VALID = {
    "type": "cart.item_added",
    "event_id": "e1",
    "customer_id": "c1",
    "occurred_at": "2026-03-01T10:00:00+00:00",
    "properties": {"cart_id": "k1", "product_id": "p1", "quantity": 2, "price": 9.5},
}


def _with(**changes: object) -> bytes:
    record = orjson.loads(orjson.dumps(VALID))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = record
        for parent in parents:
            node = node[parent]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return orjson.dumps(record)


def test_valid_record_becomes_typed_event() -> None:
    event = decode_event(_with())
    assert isinstance(event, CartItemAdded)
    assert event.properties.quantity == 2
    assert event.occurred_at == datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_encoded_event_decodes_to_the_same_event() -> None:
    event = added(quantity=3)
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (b'{"type": "cart.item_added", ', "invalid_json", None),
        (b"[1, 2]", "not_an_object", None),
        (_with(type="cart.teleported"), "unknown_type", "type"),
        (_with(properties__product_id=None), "invalid_event", "properties"),
        (_with(properties__quantity="two"), "invalid_event", "properties.quantity"),
        (_with(properties__quantity=-3), "invalid_event", "properties.quantity"),
        (_with(occurred_at="2026-03-01T10:00:00"), "invalid_event", "occurred_at"),
        (_with(customer_id=None), "invalid_event", None),
    ],
)
def test_invalid_record_is_dead_lettered_with_reason_and_field(
    raw: bytes, reason: str, field: str | None
) -> None:
    letter = decode_event(raw, source="in.jsonl", position=12)
    assert isinstance(letter, DeadLetter)
    assert (letter.reason, letter.field) == (reason, field)
    assert letter.raw.encode() == raw
    assert (letter.source, letter.position) == ("in.jsonl", 12)
    assert letter.detail


def test_missing_field_detail_names_the_field() -> None:
    letter = decode_event(_with(properties__product_id=None))
    assert isinstance(letter, DeadLetter)
    assert "product_id" in letter.detail


def test_event_after_the_latest_accepted_time_is_a_future_event() -> None:
    letter = decode_event(
        _with(occurred_at="2999-01-01T00:00:00+00:00"),
        latest_allowed=datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert isinstance(letter, DeadLetter)
    assert (letter.reason, letter.field) == ("future_event", "occurred_at")


def test_non_utf8_bytes_are_kept_as_base64() -> None:
    letter = decode_event(b"\xff\xfe{")
    assert isinstance(letter, DeadLetter)
    assert letter.raw_encoding == "base64"


def test_unknown_time_zone_is_rejected() -> None:
    raw = orjson.dumps(
        {
            "type": "customer.updated",
            "event_id": "e",
            "customer_id": "c",
            "occurred_at": "2026-01-01T00:00:00Z",
            "properties": {"time_zone": "Mars/Base"},
        }
    )
    letter = decode_event(raw)
    assert isinstance(letter, DeadLetter)
    assert "Mars/Base" in letter.detail


def test_committed_json_schemas_match_the_models() -> None:
    rendered = render_schemas()
    committed = {path.name: path.read_bytes() for path in SCHEMA_DIR.glob("*.json")}
    assert committed == rendered, "run `make schemas` to regenerate schemas/jsonschema"
