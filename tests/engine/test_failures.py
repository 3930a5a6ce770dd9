"""An event that makes the engine raise is set aside; the engine goes on with the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from engine import Engine
from rules.loader import RuleSet
from schemas import events as ev
from state import reducers
from state.profile import Profile
from state.stores import MemoryProfileStore
from streams.cli import main
from streams.partitions import PartitionEngines
from tests.builders import IMMEDIATE, at, ordered, viewed


@pytest.fixture
def boom(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug to trigger: applying a view of product ``boom`` raises."""
    original = reducers._REDUCERS[ev.ProductViewed]

    def failing(profile: Profile, event: Any, ts: float) -> None:
        if event.properties.product_id == "boom":
            raise ZeroDivisionError("division by zero")
        original(profile, event, ts)

    patched: dict[type[Any], Any] = dict(reducers._REDUCERS)
    patched[ev.ProductViewed] = failing
    monkeypatch.setattr(reducers, "_REDUCERS", patched)


@pytest.mark.usefixtures("boom")
def test_an_event_that_raises_is_set_aside_with_its_error_and_the_rest_is_applied() -> None:
    engine = Engine(MemoryProfileStore(), RuleSet.empty(), config=IMMEDIATE)
    engine.apply(viewed("p1", when=at(0)), position="a")
    engine.apply(viewed("boom", when=at(0, 1)), position="b")
    engine.apply(ordered("o1", when=at(0, 2)), position="c")
    ((event, error),) = engine.drain_failed()
    assert isinstance(event, ev.ProductViewed)
    assert (event.properties.product_id, error) == ("boom", "ZeroDivisionError: division by zero")
    assert engine.stats.failed_events == 1
    assert engine.drain_done() == ["a", "b", "c"]  # its offset is not held up
    profile = engine.store.get("c1")
    assert profile is not None
    assert profile.orders.count == 1
    assert [v.product_id for v in profile.recent_views] == ["p1"]


@pytest.mark.usefixtures("boom")
def test_replay_dead_letters_the_event_that_raised_and_finishes(tmp_path: Path) -> None:
    lines = [
        msgspec.json.encode(e)
        for e in (viewed("p1", when=at(0)), viewed("boom", when=at(0, 1)), ordered(when=at(0, 2)))
    ]
    stream, dead = tmp_path / "s.jsonl", tmp_path / "dead.jsonl"
    stream.write_bytes(b"\n".join(lines) + b"\n")
    result = CliRunner().invoke(
        main,
        [
            "replay",
            str(stream),
            "--no-progress",
            "--now",
            "2026-04-01T00:00:00Z",
            f"--dead-letters={dead}",
        ],
    )
    assert result.exit_code == 0, result.output
    (letter,) = [msgspec.json.decode(line) for line in dead.read_bytes().splitlines()]
    assert (letter["reason"], letter["detail"]) == (
        "processing_failed",
        "ZeroDivisionError: division by zero",
    )
    assert msgspec.json.decode(letter["raw"])["properties"]["product_id"] == "boom"
    assert "processing_failed" in result.output


@pytest.mark.usefixtures("boom")
def test_the_worker_engines_give_a_dead_letter_for_the_event_that_raised() -> None:
    engines = PartitionEngines(RuleSet.empty(), config=IMMEDIATE)
    now = at(1).timestamp()
    raw = msgspec.json.encode(viewed("boom", when=at(0)))
    handled = engines.handle(0, raw, "events/0@7", now, position=(0, 7, 0), offset=7)
    assert not handled.dead_letters  # valid: it failed only when applied
    (letter,) = engines.drain_failed()
    assert (letter.reason, letter.detail) == (
        "processing_failed",
        "ZeroDivisionError: division by zero",
    )
    assert engines.counts.dead_letters_by_reason["processing_failed"] == 1
    assert engines.drain_done() == [(0, 7, 0)]
    assert engines.drain_failed() == []
