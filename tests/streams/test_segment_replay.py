"""A Segment stream replayed as it is: what the generator's customers did, sent the way a
Segment source sends it (orders name no cart, page calls between views)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
from click.testing import CliRunner

from streams.cli import main
from streams.generator import GeneratorConfig, generate_stream
from tests.segment_stream import segment_lines


def test_a_segment_stream_replays_with_no_reminder_after_an_order(tmp_path: Path) -> None:
    stream = tmp_path / "segment.jsonl"
    config = GeneratorConfig(customers=300, days=30, seed=5, malformed=0.01)
    stream.write_bytes(b"\n".join(segment_lines(generate_stream(config))) + b"\n")
    actions, dead = tmp_path / "actions.jsonl", tmp_path / "dead.jsonl"
    result = CliRunner().invoke(
        main,
        [
            "replay",
            str(stream),
            "--format",
            "segment",
            "--no-progress",
            "--now",
            "2026-06-01T00:00:00+00:00",
            "--actions",
            str(actions),
            "--dead-letters",
            str(dead),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Ignored (not modelled), by name" in result.output
    assert "page" in result.output
    letters = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert letters, "the malformed records must be there"
    assert not [x for x in letters if '"type":"page"' in x["raw"]]  # skipped, not refused
    records = [orjson.loads(line) for line in actions.read_bytes().splitlines()]
    sends = [r for r in records if r.get("kind") == "send" and r["journey_id"] == "cart_recovery"]
    assert sends, "the stream must exercise cart recovery"
    orders: dict[str, list[float]] = {}
    for line in stream.read_bytes().splitlines():
        if b'"Order Completed"' in line:
            message = orjson.loads(line)
            when = datetime.fromisoformat(message["timestamp"]).timestamp()
            orders.setdefault(message.get("userId") or "", []).append(when)
    entered = {  # by cart: a visitor's run moves to the customer it identifies as
        r["entity"]: r["at"]
        for r in records
        if r.get("record") == "milestone"
        and r["kind"] == "entered"
        and r["journey_id"] == "cart_recovery"
    }
    for send in sends:
        start = entered[send["entity"]]
        bought = [t for t in orders.get(send["profile_key"], []) if start <= t < send["at"]]
        assert not bought, f"{send['action_id']}: a cart message after the order"
