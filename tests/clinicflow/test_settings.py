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


def test_image_settings_default_to_no_reader_and_images_on_request(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path)
    assert settings.models.imaging is None  # no image reader unless one is named
    assert settings.images.setting == "request" and settings.images.triage is None
    assert settings.images.download is True and settings.images.image_dir is None
    assert settings.image_cache_dir == tmp_path / "images"


def test_image_settings_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINICFLOW_MODELS__IMAGING", "openai:google/medgemma-4b-it@http://gpu-box:8000/v1")
    monkeypatch.setenv("CLINICFLOW_IMAGES__SETTING", "start")
    monkeypatch.setenv("CLINICFLOW_IMAGES__TRIAGE", "hf:google/medsiglip-448")
    monkeypatch.setenv("CLINICFLOW_IMAGES__IMAGE_DIR", str(tmp_path / "nejm-images"))
    monkeypatch.setenv("CLINICFLOW_IMAGES__CACHE_DIR", str(tmp_path / "img-cache"))
    monkeypatch.setenv("CLINICFLOW_IMAGES__DOWNLOAD", "false")
    monkeypatch.setenv("CLINICFLOW_IMAGES__MAX_BYTES", "5000000")
    settings = Settings()
    assert settings.models.imaging == "openai:google/medgemma-4b-it@http://gpu-box:8000/v1"
    assert settings.images.setting == "start" and settings.images.triage == "hf:google/medsiglip-448"
    assert settings.images.image_dir == tmp_path / "nejm-images" and settings.images.download is False
    assert settings.image_cache_dir == tmp_path / "img-cache" and settings.images.max_bytes == 5_000_000
    # An option for one image field keeps the others from the environment.
    assert Settings(images={"setting": "request"}).images.triage == "hf:google/medsiglip-448"


def test_image_settings_from_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[models]\nimaging = "hf:google/medgemma-4b-it"\n'
                      '[images]\nsetting = "start"\ntimeout_s = 5\nimage_dir = "/data/nejm"\n')
    monkeypatch.setenv("CLINICFLOW_CONFIG", str(config))
    settings = Settings()
    assert settings.models.imaging == "hf:google/medgemma-4b-it"
    assert settings.images.setting == "start" and settings.images.timeout_s == 5.0
    assert settings.images.image_dir == Path("/data/nejm")
    # The environment turns the file's reader off.
    monkeypatch.setenv("CLINICFLOW_MODELS__IMAGING", "none")
    assert Settings().models.imaging is None


def test_a_bad_image_setting_names_the_field() -> None:
    with pytest.raises(ValidationError, match="images.setting"):
        Settings(images={"setting": "later"})


def test_run_specs_add_the_reader_and_keep_triage_only_beside_it() -> None:
    from clinicflow.bench_wiring import run_specs
    from clinicflow.wiring import imaging_spec

    settings = Settings(images={"triage": "hf:google/medsiglip-448"})
    text_only = run_specs(settings, {})
    assert set(text_only) == {"reasoning", "patient", "measurement", "judge"}  # no reader: no triage either
    with_reader = run_specs(settings, {"imaging": "hf:google/medgemma-4b-it"})
    assert with_reader["imaging"] == "hf:google/medgemma-4b-it"
    assert with_reader["triage"] == "hf:google/medsiglip-448"
    assert imaging_spec(Settings(models={"imaging": "hf:/m"}), "none") is None  # "none" on the command line wins


def test_the_image_setting_reaches_the_run_config() -> None:
    from clinicflow.bench_wiring import BenchChoices, build_plan, run_specs

    settings = Settings(images={"setting": "start"})
    specs = run_specs(settings, {"imaging": "openai:google/medgemma-4b-it@http://gpu-box:8000/v1"})
    plan, _ = build_plan(settings, BenchChoices(datasets=["demo"], limit=1), specs)
    assert plan.config.image_setting == "start"
    assert plan.config.models["imaging"] == "openai:google/medgemma-4b-it@http://gpu-box:8000/v1"
    plan, _ = build_plan(Settings(), BenchChoices(datasets=["demo"], limit=1), run_specs(Settings(), {}))
    assert plan.config.image_setting == "request" and "imaging" not in plan.config.models
