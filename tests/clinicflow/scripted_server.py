"""The scripted OpenAI-compatible test server (``benchmarks/model_server.py``) for command-line tests: serving it
(the ``server_url`` fixture in this folder's conftest), every text role pointed at it, and one `clinicflow` run in
its own data and cache folders."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from tests.clinicflow.test_cli import clinicflow
from tests.conftest import REPO_ROOT

BENCH_DIR = REPO_ROOT / "benchmarks"
if str(BENCH_DIR) not in sys.path:  # the benchmarks are scripts that import each other by module name
    sys.path.insert(0, str(BENCH_DIR))

import model_server

TEXT_ROLES = ("reasoning", "patient", "measurement", "judge")

__all__ = ["TEXT_ROLES", "model_server", "roles_on", "run", "serve"]


def serve() -> Iterator[str]:
    """The server's base URL while it runs (answers at once)."""
    with model_server.serve_model_server(delay_ms=0) as url:
        yield url


def roles_on(url: str) -> list[str]:
    """Command-line options putting every text role on the scripted server at ``url``."""
    args: list[str] = []
    for role in TEXT_ROLES:
        args += [f"--{role}", f"openai:scripted-{role}@{url}"]
    return args


def run(*args: str, tmp_path: Path, stdin: str = "", timeout: int = 300) -> object:
    # Its own data dir: no `fhir serve` of the developer's is found, so no record is read.
    return clinicflow(*args, cache_dir=tmp_path / "cache", timeout=timeout, stdin=stdin,
                      extra_env={"CLINICFLOW_DATA_DIR": str(tmp_path / "data"), "CLINICFLOW_MAX_RETRIES": "0"})
