from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from rules.loader import DEFAULT_RULES_DIR, load_rules
from streams.generator import GeneratorConfig, generate_stream
from streams.replay import ReplayOutputs, ReplaySummary, replay
from streams.settings import load_settings

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def stream_100k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "stream.jsonl"
    cfg = GeneratorConfig(customers=800, days=90, seed=11, malformed=0.01)
    lines = list(generate_stream(cfg))
    assert len(lines) >= 100_000
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _run(stream: Path, out: Path) -> ReplaySummary:
    return replay(
        str(stream),
        input_format="contract",
        settings=load_settings(),
        rules=load_rules(DEFAULT_RULES_DIR),
        now=NOW,
        progress=False,
        outputs=ReplayOutputs(out / "changes.jsonl", out / "dead.jsonl", out / "profiles.jsonl"),
    )


def test_every_malformed_record_is_dead_lettered_with_a_reason(
    stream_100k: Path, tmp_path: Path
) -> None:
    _run(stream_100k, tmp_path)
    lines = stream_100k.read_bytes().splitlines()
    malformed = {
        number
        for number, line in enumerate(lines, start=1)
        if b'"bad-' in line or not _is_json(line)
    }
    letters = [orjson.loads(line) for line in (tmp_path / "dead.jsonl").read_bytes().splitlines()]
    assert {letter["position"] for letter in letters} == malformed
    assert all(letter["reason"] and letter["detail"] for letter in letters)
    assert all(lines[letter["position"] - 1].decode() == letter["raw"] for letter in letters)
    assert len(letters) >= 0.009 * len(lines)


def test_a_second_replay_gives_byte_identical_outputs(stream_100k: Path, tmp_path: Path) -> None:
    first = _run(stream_100k, tmp_path / "a")
    second = _run(stream_100k, tmp_path / "b")
    for name in ("changes.jsonl", "dead.jsonl", "profiles.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first.deterministic() == second.deterministic()
    assert first.changes_by_kind["tag_added"] > 0
    assert first.duplicates > 0


def test_summary_counts_customers_by_lifecycle_and_tier(stream_100k: Path, tmp_path: Path) -> None:
    summary = _run(stream_100k, tmp_path)
    assert sum(summary.lifecycle.values()) == summary.customers == sum(summary.tiers.values())
    text = summary.render()
    assert "Dead letters by reason" in text
    assert "future_event" in text
