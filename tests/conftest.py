"""Shared fixtures: a clean environment for every test, so no CLINICFLOW_* variable leaks in or out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("CLINICFLOW_"):
            monkeypatch.delenv(key)
    # A config file in the developer's home must not change what the tests see.
    monkeypatch.setenv("CLINICFLOW_CONFIG", str(tmp_path_factory.mktemp("config") / "absent.toml"))
    yield


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    """Where tests keep the converted embedded checkpoint: under the repo's .venv, so reruns reuse it."""
    path = REPO_ROOT / ".venv" / "clinicflow-test-cache" / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
