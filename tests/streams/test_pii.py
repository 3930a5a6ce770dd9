"""Email and phone never reach state, outputs or logs in plain form (docs/privacy.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from state.reducers import contact_digest
from streams.cli import main

EMAIL, PHONE = "Mia.Schmidt@Example.org", "+49 170 1234567"
KEY = "pii-test-contact-key-" + "z" * 20
#: The forms a leak could take: as given, normalised, and the local part or number alone.
TRACES = (EMAIL, EMAIL.lower(), "mia.schmidt", PHONE, "1701234567", "170 1234567")


def _line(kind: str, minutes: int, **props: object) -> bytes:
    return msgspec.json.encode(
        {
            "type": kind,
            "event_id": f"{kind}-{minutes}",
            "customer_id": "c1",
            "occurred_at": f"2026-03-02T10:{minutes:02d}:00Z",
            "properties": props,
        }
    )


LINES = [
    _line("customer.registered", 0, email=EMAIL, phone=PHONE, country="DE"),
    _line("consent.updated", 1, channel="email", granted=True),
    _line("cart.item_added", 2, cart_id="k1", product_id="p1", quantity=1, price=40.0),
    _line("customer.updated", 3, email=EMAIL.upper(), phone=PHONE),
    # Refused (the country must be two capital letters): its reason must not quote the rest.
    _line("customer.updated", 4, email=EMAIL, phone=PHONE, country="germany"),
    _line("order.placed", 50, order_id="o1", total=40.0, cart_id="k1"),
]


def test_contact_data_is_kept_only_as_a_digest_and_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAPPORT_PROFILE__PRIVACY__CONTACT_KEY", KEY)
    stream = tmp_path / "events.jsonl"
    stream.write_bytes(b"\n".join(LINES) + b"\n")
    outputs = {name: tmp_path / f"{name}.jsonl" for name in ("changes", "profiles", "actions")}
    dead, summary = tmp_path / "dead.jsonl", tmp_path / "summary.json"
    caplog.set_level(logging.DEBUG)
    args = ["replay", str(stream), "--no-progress", "--now", "2026-04-01T00:00:00Z"]
    args += [f"--{name}={path}" for name, path in outputs.items()]
    args += [f"--dead-letters={dead}", f"--summary-json={summary}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output

    (profile,) = [msgspec.json.decode(line) for line in outputs["profiles"].read_bytes().split()]
    digest = contact_digest(KEY.encode(), "k1")
    assert profile["traits"]["email_digest"]["value"] == digest(EMAIL)
    assert profile["traits"]["phone_digest"]["value"] == digest(PHONE)
    kept = {name: path.read_text() for name, path in outputs.items()}
    kept["summary"], kept["stdout"] = summary.read_text(), result.output
    kept["logs"] = "\n".join(record.getMessage() for record in caplog.records)
    (letter,) = [msgspec.json.decode(line) for line in dead.read_bytes().split(b"\n") if line]
    kept["dead letter reason"] = f"{letter['reason']} {letter['detail']} {letter.get('field')}"
    assert "country" in kept["dead letter reason"]
    leaks = {
        (where, trace) for where, text in kept.items() for trace in TRACES if trace in text.lower()
    }
    assert leaks == set()
