"""`rapport rules test`: the shipped cases pass, and a wrong expectation says what differs."""

import shutil
from pathlib import Path

from click.testing import CliRunner

from rules.loader import DEFAULT_RULES_DIR
from streams.cli import main
from streams.rule_tests import run_cases

SHIPPED_JOURNEYS = sorted(p.stem for p in (DEFAULT_RULES_DIR / "journeys").glob("*.yaml"))


def test_every_shipped_case_passes() -> None:
    results = run_cases(DEFAULT_RULES_DIR)
    assert [r for r in results if not r.passed] == []


def test_every_built_in_journey_ships_with_cases() -> None:
    cases = (DEFAULT_RULES_DIR / "cases").glob("*.yaml")
    covered = {
        line.split("[")[1].split("]")[0]
        for p in cases
        for line in p.read_text().splitlines()
        if "journeys: [" in line
    }
    assert set(SHIPPED_JOURNEYS) <= covered


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def test_a_wrong_expectation_names_the_case_and_the_difference(tmp_path: Path) -> None:
    rules = _copy(tmp_path)
    cases = rules / "cases" / "sla_escalation.yaml"
    cases.write_text(
        cases.read_text().replace(
            'at: "2026-03-02T23:00:00+00:00"', 'at: "2026-03-02T23:30:00+00:00"'
        )
    )
    result = CliRunner().invoke(main, ["rules", "test", str(rules)])
    assert result.exit_code == 1
    assert "FAIL" in result.output
    assert "an urgent ticket without an agent reply escalates after an hour" in result.output
    assert "at: expected" in result.output


def test_a_missing_action_is_reported(tmp_path: Path) -> None:
    rules = _copy(tmp_path)
    (rules / "journeys" / "vip_welcome.yaml").write_text(
        (rules / "journeys" / "vip_welcome.yaml").read_text().replace("to: gold", "to: platinum")
    )
    results = {r.name: r for r in run_cases(rules)}
    problems = results["reaching gold brings a welcome at ten the next morning"].problems
    assert problems == [
        "missing action #1: expected template='vip_welcome', status='sent', at="
        + problems[0].split("at=")[1]
    ]


def test_rule_file_schemas_match_the_models() -> None:
    from rules.rule_schemas import RULE_SCHEMA_DIR, render_rule_schemas

    for name, content in render_rule_schemas().items():
        assert (RULE_SCHEMA_DIR / name).read_bytes() == content, (
            f"run `rapport rules schema`: {name}"
        )


def test_every_shipped_rule_file_points_editors_at_its_schema() -> None:
    files = [*DEFAULT_RULES_DIR.glob("*.yaml"), *DEFAULT_RULES_DIR.glob("*/*.yaml")]
    assert all(p.read_text().startswith("# yaml-language-server: $schema=") for p in files)
