"""Records built to break the decoder: bad bytes inside values, deep nesting where Rapport
does not look, amounts past any till, records longer than the limit, and records that are
only partly wrong. None may raise; each gives an event, a partial event or a dead letter
that says why."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from schemas.decode import DeadLetter, PartialEvent, decode_event
from schemas.events import CustomerUpdated, OrderPlaced
from schemas.limits import DEAD_LETTER_PREFIX_BYTES, MAX_NESTING
from streams.sources.files import numbered_lines

ORDER: dict[str, Any] = {
    "type": "order.placed",
    "event_id": "e1",
    "customer_id": "c1",
    "occurred_at": "2026-03-01T10:00:00+00:00",
    "properties": {
        "order_id": "o1",
        "total": 60.0,
        "items": [
            {"product_id": "p1", "quantity": 1, "price": 20.0},
            {"product_id": "p2", "quantity": 2, "price": 20.0},
        ],
    },
}


def _order(**properties: Any) -> dict[str, Any]:
    return {**ORDER, "properties": {**ORDER["properties"], **properties}}


def _letter(raw: bytes) -> DeadLetter:
    result = decode_event(raw, source="hostile.jsonl", position=3)
    assert isinstance(result, DeadLetter), result
    assert result.source == "hostile.jsonl"
    assert result.position == 3
    return result


def test_a_string_value_that_is_not_utf8_is_a_dead_letter_not_a_crash() -> None:
    raw = orjson.dumps(ORDER).replace(b'"c1"', b'"c\xff\xfe1"')
    letter = _letter(raw)
    assert letter.reason == "invalid_json"
    assert "UTF-8" in letter.detail
    assert letter.raw_encoding == "base64"  # the bytes are kept exactly


def test_json_nested_a_thousand_deep_inside_an_unknown_property_is_too_deep() -> None:
    deep = b"[" * 1000 + b"]" * 1000
    raw = orjson.dumps(ORDER)[:-2] + b',"notes":' + deep + b"}}"
    letter = _letter(raw)
    assert letter.reason == "too_deep"
    assert f"at most {MAX_NESTING}" in letter.detail


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = MAX_NESTING - 2  # the envelope and properties are two levels
    raw = orjson.dumps(ORDER)[:-2] + b',"notes":' + b"[" * depth + b"]" * depth + b"}}"
    assert isinstance(decode_event(raw), OrderPlaced)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    raw = orjson.dumps(_order(coupon="[" * 60))
    assert isinstance(decode_event(raw), OrderPlaced)


def test_a_total_past_a_billion_is_refused_naming_the_field() -> None:
    letter = _letter(orjson.dumps(_order(total=1e20)))
    assert letter.reason == "invalid_event"
    assert letter.field == "properties.total"
    assert "<= 1000000000" in letter.detail


def test_a_line_price_of_1e308_drops_that_line_and_keeps_the_order() -> None:
    items = [*ORDER["properties"]["items"], {"product_id": "p3", "quantity": 1, "price": 1e308}]
    result = decode_event(orjson.dumps(_order(items=items)))
    assert isinstance(result, PartialEvent)
    assert [item.product_id for item in result.event.properties.items] == ["p1", "p2"]  # type: ignore[union-attr]
    assert result.dropped.field == "properties.items[2]"


def test_an_order_with_one_bad_product_keeps_the_others_and_names_the_bad_one() -> None:
    items = [
        {"product_id": "p1", "quantity": 1, "price": 20.0},
        {"product_id": "p2", "quantity": 0, "price": 20.0},
        {"product_id": "p3", "quantity": 2, "price": 20.0},
    ]
    result = decode_event(orjson.dumps(_order(items=items)), source="s", position=9)
    assert isinstance(result, PartialEvent)
    event = result.event
    assert isinstance(event, OrderPlaced)
    assert [item.product_id for item in event.properties.items] == ["p1", "p3"]
    assert event.properties.total == 60.0  # what the customer paid stays as sent
    letter = result.dropped
    assert (letter.reason, letter.field, letter.position) == ("partial", "properties.items[1]", 9)
    assert "quantity" in letter.detail
    assert "applied without 1 invalid part" in letter.detail


def test_a_lower_case_currency_is_normalised_without_a_report() -> None:
    result = decode_event(orjson.dumps(_order(currency="usd")))
    assert isinstance(result, OrderPlaced)
    assert result.properties.currency == "USD"


def test_a_currency_that_is_not_a_code_is_still_refused() -> None:
    letter = _letter(orjson.dumps(_order(currency="dollars")))
    assert (letter.reason, letter.field) == ("invalid_event", "properties.currency")


def _updated(**traits: Any) -> bytes:
    return orjson.dumps(
        {
            "type": "customer.updated",
            "event_id": "u1",
            "customer_id": "c1",
            "occurred_at": "2026-03-01T10:00:00+00:00",
            "properties": traits,
        }
    )


def test_an_identify_with_one_bad_trait_keeps_the_others() -> None:
    result = decode_event(_updated(email="not an address", time_zone="Europe/Paris", country="fr"))
    assert isinstance(result, PartialEvent)
    event = result.event
    assert isinstance(event, CustomerUpdated)
    assert (event.properties.email, event.properties.time_zone) == (None, "Europe/Paris")
    assert event.properties.country == "FR"
    assert result.dropped.field == "properties.email"


def test_an_identify_whose_every_trait_is_bad_is_refused() -> None:
    letter = _letter(_updated(time_zone="Mars/Olympus_Mons"))
    assert letter.reason == "invalid_event"
    assert "IANA" in letter.detail


def test_a_record_over_the_size_limit_keeps_only_a_prefix() -> None:
    raw = orjson.dumps(_order(coupon="x" * 100)) + b" " * 5000
    result = decode_event(raw, max_bytes=2048)
    assert isinstance(result, DeadLetter)
    assert result.reason == "too_large"
    assert result.raw_size == len(raw)
    assert len(result.raw) <= DEAD_LETTER_PREFIX_BYTES
    assert "engine.max_record_bytes" in result.detail


def test_a_line_over_the_limit_is_read_through_and_the_next_line_goes_on() -> None:
    good = orjson.dumps(ORDER)
    stream = io.BytesIO(good + b"\n" + b"x" * 50_000 + b"\n" + good + b"\n")
    entries = list(numbered_lines(stream, "big.jsonl", 4096))
    assert entries[0] == (1, good)
    assert entries[2] == (3, good)
    letter = entries[1]
    assert isinstance(letter, DeadLetter)
    assert (letter.reason, letter.position, letter.raw_size) == ("too_large", 2, 50_001)
    assert len(letter.raw) == DEAD_LETTER_PREFIX_BYTES


@pytest.mark.parametrize(
    "raw",
    [
        orjson.dumps(ORDER)[:-2] + b',"x":' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}}",
        b'{"type":"order.placed","event_id":"\xed\xa0\x80"}',  # a lone surrogate, as UTF-8
        b'{"type":"customer.updated","event_id":"e","customer_id":"c","occurred_at":'
        b'"2026-03-01T10:00:00Z","properties":{"time_zone":"../../../etc/passwd"}}',
        b'{"type":' + b'"' + b"a" * 10_000 + b'"}',
    ],
)
def test_odd_records_give_a_dead_letter(raw: bytes) -> None:
    assert _letter(raw).detail
