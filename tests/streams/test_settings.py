from pathlib import Path

import pytest
from pydantic import ValidationError
from ruamel.yaml import YAML

from streams.settings import DEFAULTS_FILE, defaults_document, load_settings


def test_config_defaults_file_matches_the_declared_defaults() -> None:
    on_disk = YAML(typ="safe").load(DEFAULTS_FILE.read_text())
    assert on_disk == defaults_document(), "run `make schemas` to regenerate config/defaults.yaml"


def test_environment_overrides_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_PROFILE__LIFECYCLE__CHURNED_AFTER_DAYS", "150")
    monkeypatch.setenv("RAPPORT_ENGINE__ALLOWED_LATENESS", "15m")
    settings = load_settings()
    assert settings.profile.lifecycle.churned_after_days == 150
    assert settings.engine.engine_config().allowed_lateness_seconds == 900


def test_config_file_overrides_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text("engine:\n  max_clock_skew: 5m\n")
    monkeypatch.setenv("RAPPORT_CONFIG_FILE", str(tmp_path / "site.yaml"))
    assert load_settings().engine.max_clock_skew_seconds == 300


def test_bad_duration_is_rejected_with_the_setting_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_ENGINE__DEDUP_WINDOW", "a while")
    with pytest.raises(ValidationError, match="dedup_window"):
        load_settings()
