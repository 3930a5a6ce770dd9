import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rules.loader import DEFAULT_RULES_DIR
from streams.cli import main


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for args in (
        ["--help"],
        ["replay", "--help"],
        ["generate", "--help"],
        ["rules", "validate", "--help"],
        ["schemas", "export", "--help"],
        ["config", "show", "--help"],
        ["churn", "evaluate", "--help"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, args
        assert "Usage:" in result.output


def test_generate_then_replay_prints_a_summary(tmp_path: Path) -> None:
    runner = CliRunner()
    stream = tmp_path / "s.jsonl"
    assert (
        runner.invoke(
            main, ["generate", "--customers", "20", "--days", "10", "-o", str(stream)]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        main, ["replay", str(stream), "--no-progress", "--now", "2026-06-01T00:00:00+00:00"]
    )
    assert result.exit_code == 0, result.output
    assert "Events by type" in result.output
    assert "Loyalty points:" in result.output  # the shipped rules have a program


def test_missing_input_exits_3_with_the_file_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(tmp_path / "nope.jsonl"), "--no-progress"])
    assert result.exit_code == 3
    assert "nope.jsonl" in result.output


def test_invalid_rules_exit_1_with_located_problems(tmp_path: Path) -> None:
    (tmp_path / "tags.yaml").write_text(
        "tags:\n  - id: Bad Id\n    when: tier == 'x'\n    on: [order.placed]\n"
    )
    result = CliRunner().invoke(main, ["rules", "validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "tags.yaml:2:" in result.output


def test_shipped_rules_validate() -> None:
    result = CliRunner().invoke(main, ["rules", "validate"])
    assert result.exit_code == 0, result.output
    assert "interpreter" not in result.output  # every shipped part is compiled


def test_validate_names_the_template_parts_left_to_the_interpreter(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules)
    reminder = rules / "templates" / "cart_reminder.yaml"
    text = reminder.read_text(encoding="utf-8")
    reminder.write_text(
        text.replace("title: Your cart is waiting", "title: \"{% assign w = 'x' %}{{ w }}\""),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["rules", "validate", str(rules)])
    assert result.exit_code == 0, result.output
    assert "cart_reminder push en title (assign)" in result.output


def test_the_worker_refuses_to_start_when_a_webhook_secret_is_not_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = '{"crm": {"type": "webhook", "url": "https://crm.example/h", "secret_env": "CRM_KEY"}}'
    monkeypatch.setenv("RAPPORT_DELIVERY__ADAPTERS", hook)
    monkeypatch.setenv("RAPPORT_DELIVERY__DEFAULT_ADAPTER", "crm")
    monkeypatch.delenv("CRM_KEY", raising=False)
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 1
    assert "environment variable CRM_KEY is not set" in result.output


def test_churn_evaluate_prints_prequential_figures_and_the_batch_baseline(tmp_path: Path) -> None:
    runner = CliRunner()
    stream = tmp_path / "s.jsonl"
    generated = runner.invoke(
        main, ["generate", "--customers", "200", "--days", "150", "-o", str(stream)]
    )
    assert generated.exit_code == 0, generated.output
    # A short horizon and check-in, so labels come early enough in 150 days to judge scores.
    result = runner.invoke(
        main,
        ["churn", "evaluate", str(stream), "--horizon", "14d", "--checkin", "7d"],
        env={"RAPPORT_CHURN__MIN_LABELS": "20"},
    )
    assert result.exit_code == 0, result.output
    assert "prequential" in result.output
    assert "order    ROC AUC 0." in result.output
    assert "batch baseline (gradient boosting" in result.output


def test_churn_evaluate_refuses_a_bad_horizon_with_the_value(tmp_path: Path) -> None:
    stream = tmp_path / "s.jsonl"
    stream.write_text("")
    result = CliRunner().invoke(main, ["churn", "evaluate", str(stream), "--horizon", "soon"])
    assert result.exit_code == 2
    assert "'soon'" in result.output
