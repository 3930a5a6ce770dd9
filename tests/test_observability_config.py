"""The alert rules, their unit tests and the Grafana dashboard are valid and documented.

A real Prometheus evaluating every rule and panel query against live workers is in
``tests/integration/test_worker_http.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS = REPO / "config" / "prometheus"
DASHBOARD = REPO / "config" / "grafana" / "dashboards" / "rapport.json"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: `make test` installs Debian's prometheus package"
    return subprocess.run([binary, *args], cwd=PROMETHEUS, capture_output=True, text=True)


def _alerts() -> list[dict[str, Any]]:
    groups = YAML(typ="safe").load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_the_alert_rules_pass_promtool_check_rules() -> None:
    checked = _promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_fires_as_its_promtool_unit_test_says() -> None:
    tested = _promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    spec = YAML(typ="safe").load((PROMETHEUS / "alerts.test.yml").read_text())
    fired = {
        case["alertname"]
        for test in spec["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in _alerts()}


def test_prometheus_loads_the_alert_rules() -> None:
    config = YAML(typ="safe").load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    compose = YAML(typ="safe").load((REPO / "docker-compose.yml").read_text())
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./config/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts


def test_every_alert_has_a_severity_a_summary_and_a_runbook_entry() -> None:
    runbook = (REPO / "docs" / "operations.md").read_text()
    for rule in _alerts():
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        assert f"`{rule['alert']}`" in runbook, f"docs/operations.md lacks {rule['alert']}"


def test_the_dashboard_is_provisioned_and_every_panel_queries_the_provisioned_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    datasources = YAML(typ="safe").load(
        (REPO / "config/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    uid = datasources[0]["uid"]
    graphs = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len(graphs) >= 30
    for panel in graphs:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
    provider = YAML(typ="safe").load(
        (REPO / "config/grafana/provisioning/dashboards/rapport.yml").read_text()
    )["providers"][0]
    compose = YAML(typ="safe").load((REPO / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./config/grafana/dashboards:{provider['options']['path']}:ro" in mounts
