"""The compose file, Prometheus config and Dockerfile agree with the settings they feed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from streams.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def _yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return Settings()


def test_every_compose_worker_sets_only_settings_that_exist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = _yaml(REPO / "docker-compose.yml")["services"]
    workers = {name: s for name, s in services.items() if name.startswith("worker-")}
    assert len(workers) == 2
    for name, service in workers.items():
        settings = _settings_from(service["environment"], monkeypatch)
        assert settings.worker.web_host == name
        assert settings.worker.broker == "kafka://kafka:9092"
        assert settings.redis.url == "redis://redis:6379/0"


def test_prometheus_scrapes_every_compose_worker_on_its_web_port() -> None:
    services = _yaml(REPO / "docker-compose.yml")["services"]
    scrape = _yaml(REPO / "config" / "prometheus" / "prometheus.yml")["scrape_configs"]
    targets = {t for job in scrape for group in job["static_configs"] for t in group["targets"]}
    port = Settings().worker.web_port
    assert targets == {f"{name}:{port}" for name in services if name.startswith("worker-")}


def test_the_dockerfile_sets_only_settings_that_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (REPO / "Dockerfile").read_text()
    env = dict(re.findall(r"(RAPPORT_[A-Z_]+)=('[^']*'|\S+)", text))
    assert "RAPPORT_WORKER__DATA_DIR" in env
    monkeypatch.chdir(REPO)
    values = {k: v.strip("'") for k, v in env.items() if k != "RAPPORT_CONFIG_FILE"}
    values["RAPPORT_RULES_DIR"] = str(REPO / "rules")
    settings = _settings_from(values, monkeypatch)
    assert settings.delivery.adapters["log"].type == "log"
    assert str(settings.worker.data_dir) == "/app/data"


def test_the_dockerfile_copies_every_package_the_project_installs() -> None:
    text = (REPO / "Dockerfile").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    include = re.search(r"\[tool\.setuptools\.packages\.find\]\ninclude = \[([^\]]*)\]", pyproject)
    assert include is not None
    packages = [name.strip().strip('"').rstrip("*") for name in include.group(1).split(",")]
    missing = [name for name in packages if f"COPY {name} {name}" not in text]
    assert not missing, f"the image would lack {missing}"
    # Bench- and test-only peers stay out of the image.
    assert re.search(r"grep -v -E '\^\([^']*snownlp[^']*cnsenti[^']*jieba", text)
