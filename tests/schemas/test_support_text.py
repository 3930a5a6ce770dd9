"""Support text on the contract: bounded, and a ticket whose text is bad still opens."""

from __future__ import annotations

import orjson

from schemas.decode import DeadLetter, PartialEvent, decode_event
from schemas.events import TicketOpened


def _ticket(**props: object) -> bytes:
    return orjson.dumps(
        {
            "type": "support.ticket_opened",
            "event_id": "e1",
            "customer_id": "c1",
            "occurred_at": "2026-03-02T10:00:00Z",
            "properties": {"ticket_id": "t1", **props},
        }
    )


def test_a_ticket_with_an_overlong_body_opens_without_it_and_says_so() -> None:
    decoded = decode_event(_ticket(subject="Refund", body="x" * 20_001), source="s", position=3)
    assert isinstance(decoded, PartialEvent)
    assert isinstance(decoded.event, TicketOpened)
    assert decoded.event.properties.subject == "Refund"
    assert decoded.event.properties.body is None
    assert decoded.dropped.field == "properties.body"
    assert "20000" in decoded.dropped.detail


def test_text_within_its_bounds_is_kept_whole() -> None:
    decoded = decode_event(_ticket(subject="s" * 512, body="b" * 20_000, language="zh-CN"))
    assert isinstance(decoded, TicketOpened)
    assert decoded.properties.scored_text() == "s" * 512 + "\n" + "b" * 20_000


def test_a_bad_ticket_id_still_refuses_the_whole_record() -> None:
    decoded = decode_event(_ticket(ticket_id="", body="x" * 30_000))
    assert isinstance(decoded, DeadLetter)
    assert decoded.reason == "invalid_event"
