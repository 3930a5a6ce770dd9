import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from rules.loader import DEFAULT_RULES_DIR, RuleSet, load_rules
from rules.reloader import RulesWatcher
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
        outputs=ReplayOutputs(
            out / "changes.jsonl", out / "dead.jsonl", out / "profiles.jsonl", out / "actions.jsonl"
        ),
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
    for name in ("changes.jsonl", "dead.jsonl", "profiles.jsonl", "actions.jsonl"):
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


def test_no_action_id_appears_twice(stream_100k: Path, tmp_path: Path) -> None:
    summary = _run(stream_100k, tmp_path)
    records = [
        orjson.loads(line) for line in (tmp_path / "actions.jsonl").read_bytes().splitlines()
    ]
    ids = [r["action_id"] for r in records if r["record"] == "action"]
    assert len(ids) > 1000
    assert len(ids) == len(set(ids))
    milestones = [r["milestone_id"] for r in records if r["record"] == "milestone"]
    assert len(milestones) == len(set(milestones))
    assert {row["journey"] for row in summary.journeys} >= {"cart_recovery", "sla_escalation"}


def _replay_with_edit(
    stream: Path, tmp_path: Path, edit: Callable[[Path], None]
) -> tuple[RuleSet, ReplaySummary]:
    """Replay with a copy of the shipped rules that ``edit`` changes on the third check."""
    rules_dir = tmp_path / "rules"
    shutil.copytree(
        DEFAULT_RULES_DIR, rules_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    rules = load_rules(rules_dir)
    watcher = RulesWatcher(rules_dir, rules)
    calls = 0

    def edit_then_check() -> RuleSet | None:
        nonlocal calls
        calls += 1
        if calls == 3:
            edit(rules_dir)
        return watcher.check()

    summary = replay(
        str(stream),
        input_format="contract",
        settings=load_settings(),
        rules=rules,
        now=NOW,
        progress=False,
        outputs=ReplayOutputs(actions=tmp_path / "actions.jsonl"),
        reload_rules=edit_then_check,
    )
    return rules, summary


def test_an_invalid_rule_edit_mid_replay_keeps_the_last_good_rules(
    stream_100k: Path, tmp_path: Path
) -> None:
    def break_a_duration(rules_dir: Path) -> None:
        journey = rules_dir / "journeys" / "cart_recovery.yaml"
        journey.write_text(journey.read_text().replace("wait: 1h", "wait: 1 hour"))

    rules, summary = _replay_with_edit(stream_100k, tmp_path, break_a_duration)
    assert summary.rules_rejected == 1
    assert summary.rules_reloaded == 0
    assert summary.rules_version == rules.version
    assert "1 rejected" in summary.render()
    late_sends = [
        r
        for r in map(orjson.loads, (tmp_path / "actions.jsonl").read_bytes().splitlines())
        if r.get("template") == "cart_reminder"
    ]
    assert late_sends  # cart recovery kept running on the last good rules


def test_a_valid_rule_edit_mid_replay_is_swapped_in(stream_100k: Path, tmp_path: Path) -> None:
    def drop_a_journey(rules_dir: Path) -> None:
        (rules_dir / "journeys" / "birthday_gift.yaml").unlink()

    rules, summary = _replay_with_edit(stream_100k, tmp_path, drop_a_journey)
    assert summary.rules_reloaded == 1
    assert summary.rules_version != rules.version
