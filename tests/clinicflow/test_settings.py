"""Settings precedence as the README states it: options > CLINICFLOW_* variables > TOML file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from clinicflow.settings import Settings
from clinicflow.wiring import doctor_max_new_tokens, role_specs


def test_defaults_run_everything_on_the_embedded_model() -> None:
    settings = Settings()
    assert role_specs(settings, {}) == {r: "embedded" for r in ("reasoning", "patient", "measurement", "judge")}
    assert settings.max_turns == 20 and settings.measurement_mode == "strict"
    assert doctor_max_new_tokens(settings, "embedded") == 96
    assert doctor_max_new_tokens(settings, "openai:m@http://gpu:8000/v1") == 1024


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text('max_turns = 12\nmeasurement_mode = "agentclinic"\n[models]\nreasoning = "hf:/models/x"\n')
    monkeypatch.setenv("CLINICFLOW_CONFIG", str(config))
    monkeypatch.setenv("CLINICFLOW_MAX_TURNS", "7")
    settings = Settings()
    assert settings.max_turns == 7  # the environment beats the file
    assert settings.measurement_mode == "agentclinic"  # the file beats the default
    assert settings.models.reasoning == "hf:/models/x"
    assert Settings(max_turns=3).max_turns == 3  # an option beats both
    assert role_specs(settings, {"reasoning": "embedded"})["reasoning"] == "embedded"


def test_api_key_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINICFLOW_OPENAI_API_KEY", "sk-very-secret")
    settings = Settings()
    assert "sk-very-secret" not in repr(settings) and "sk-very-secret" not in str(settings.model_dump())


def test_bad_value_names_the_field() -> None:
    with pytest.raises(ValidationError, match="measurement_mode"):
        Settings(measurement_mode="lenient")
