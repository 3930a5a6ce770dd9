"""A previewed email opened in a real headless browser (Debian's chromium): it renders, it
shows what the customer's cart holds, and no template syntax is left on the page."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import msgspec
import pytest

from rules.loader import DEFAULT_RULES_DIR, load_rules
from streams.preview import describe, preview_sends
from tests.builders import added, at, event

pytestmark = pytest.mark.integration

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is not installed: `make test` installs Debian's chromium"
    return found


def _browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run(
        [_chromium(), *_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        timeout=120,
        check=True,
    )


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed image data of a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width = height = 0
    compressed = b""
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            compressed += body
        offset += 12 + length
    return width, height, zlib.decompress(compressed)


def test_a_previewed_reminder_renders_in_a_browser_with_no_template_left(
    tmp_path: Path,
) -> None:
    history = tmp_path / "history.jsonl"
    events = [
        event("consent.updated", when=at(), channel="email", granted=True),
        added("k1", "p1", price=30.0, quantity=2, name="Trail Runner", when=at(0, 1)),
        added("k1", "p2", price=12.5, name="Wool Socks", when=at(0, 1, 5)),
    ]
    history.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
    preview = preview_sends(
        str(history), load_rules(DEFAULT_RULES_DIR), "c1", "cart_recovery", at(days=3)
    )
    lines = [line for send in preview.sends for line in describe(send, tmp_path / "html")]
    pages = sorted((tmp_path / "html").glob("*.html"))
    assert len(pages) == 2, lines  # the reminder and the coupon
    reminder = next(p for p in pages if "Trail Runner" in p.read_text(encoding="utf-8"))
    page = tmp_path / "page.html"
    page.write_text(
        '<!doctype html><meta charset="utf-8">' + reminder.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    dom = _browser(tmp_path, "--dump-dom", page.as_uri()).stdout.decode()
    assert "Trail Runner" in dom
    assert "Wool Socks" in dom
    assert "£72.50" in dom
    for syntax in ("{{", "}}", "{%", "%}"):
        assert syntax not in dom, f"unresolved template syntax {syntax!r} on the page"
    shot = tmp_path / "reminder.png"
    _browser(tmp_path, "--window-size=800,600", f"--screenshot={shot}", page.as_uri())
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (800, 600)
    assert len(set(pixels)) > 8, "the screenshot is blank"
