"""A whole replay over the hostile records outside testers sent: it runs to the end,
writes every output, dead-letters each bad record with its reason and applies the rest."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from streams.cli import main


def _order(event_id: str, customer: str, **properties: Any) -> bytes:
    return orjson.dumps(
        {
            "type": "order.placed",
            "event_id": event_id,
            "customer_id": customer,
            "occurred_at": "2026-03-01T10:00:00+00:00",
            "properties": {"order_id": event_id, "total": 50.0, **properties},
        }
    )


HOSTILE = [
    _order("h1", "c1").replace(b'"c1"', b'"c\xff1"'),  # not UTF-8 inside a value
    _order("h2", "c1")[:-2] + b',"x":' + b"[" * 1000 + b"]" * 1000 + b"}}",  # deep, unread
    _order("h3", "c1", total=1e20),  # past any till
    _order("h4", "c1", items=[{"product_id": "p", "quantity": 1, "price": 1e308}]),
    b'{"type":"order.placed","pad":"' + b"x" * (3 << 20) + b'"}',  # 3 MB on one line
    _order(
        "h5",
        "c3",
        items=[
            {"product_id": "p1", "quantity": 1, "price": 25.0},
            {"product_id": "p2", "quantity": -1, "price": 25.0},
        ],
    ),
    _order("h6", "c4", currency="usd"),
    orjson.dumps(
        {
            "type": "customer.updated",
            "event_id": "h7",
            "customer_id": "c5",
            "occurred_at": "2026-03-01T10:00:00+00:00",
            "properties": {"email": "not-an-address", "country": "de"},
        }
    ),
]


def test_a_replay_over_hostile_records_finishes_and_keeps_what_is_valid(tmp_path: Path) -> None:
    stream = tmp_path / "hostile.jsonl"
    stream.write_bytes(b"\n".join([*HOSTILE, _order("g1", "c2")]) + b"\n")
    dead, profiles = tmp_path / "dead.jsonl", tmp_path / "profiles.jsonl"
    result = CliRunner().invoke(
        main,
        [
            "replay",
            str(stream),
            "--no-progress",
            "--now",
            "2026-06-01T00:00:00+00:00",
            "--dead-letters",
            str(dead),
            "--profiles",
            str(profiles),
        ],
    )
    assert result.exit_code == 0, result.output
    letters = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert Counter(letter["reason"] for letter in letters) == {
        "invalid_json": 1,
        "too_deep": 1,
        "invalid_event": 1,
        "partial": 3,
        "too_large": 1,
    }
    assert max(len(line) for line in dead.read_bytes().splitlines()) < 10_000
    by_key = {p["key"]: p for p in map(orjson.loads, profiles.read_bytes().splitlines())}
    assert by_key["c2"]["orders"]["count"] == 1  # the record after the hostile ones
    assert by_key["c1"]["orders"]["count"] == 1  # h4, without its impossible line
    assert by_key["c3"]["orders"]["count"] == 1
    assert by_key["c4"]["orders"]["count"] == 1
    assert by_key["c5"]["traits"]["country"]["value"] == "DE"
    assert "email_sha256" not in by_key["c5"]["traits"]
