"""A local sekmet-fhir server (FHIR R4 over SQLite) run as a child process on 127.0.0.1.

Used by ``clinicflow fhir serve`` (persistent data directory) and by the test fixtures (a temporary one). The
settings file is generated: loopback host, a free port, the order simulator off (it would answer orders by itself),
the traffic log off (it stores every request body), and no auth unless bearer tokens are given. Errors are in
``tools.fhirserver.errors``.

Inbound validation is off by default. sekmet's "strict" mode validates each entry with fhir.resources R4B inside
its write lock: it accepted all 15 Synthea bundles of ../shared but loaded them in 11.8 s instead of 7.9 s. Our
loads are our own data (Synthea, the demo generator, both validated by the tests), and the read-only client
validates what it receives at its own boundary, so the server checking again buys nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

import httpx
from pydantic import SecretStr

from tools.fhirserver.errors import ServerConfigError, ServerStartError
from tools.fhirserver.loading import LoadReport, bundles_fingerprint, load_bundles

ValidationMode = Literal["strict", "warn", "off"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
SETTINGS_FILE = "settings.yaml"
LOG_FILE = "sekmet.log"
DATABASE_FILE = "sekmet.db"
LOAD_MARKER_FILE = "clinicflow-loaded.json"
# sekmet reads these environment variables over its settings file: a stray one would move the server elsewhere.
_SEKMET_ENV_OVERRIDES = ("SEKMET_BASE_URL", "SEKMET_PORT", "SEKMET_DB", "SEKMET_PUBLIC_URL", "SEKMET_CONFIG")
_PORT_RETRIES = 3


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it); another process may still take it first."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SekmetServer:
    """One sekmet-fhir process. ``start()`` returns once ``GET {base_url}/metadata`` answers; ``stop()`` ends it.

    ``data_dir=None`` uses a temporary directory removed on ``stop()``; a given directory is kept, so its store
    survives restarts (``is_loaded``/``load`` skip bundles already loaded there). Binding to anything but a loopback
    address needs ``allow_non_loopback=True``: the demo server has no auth and must not be reachable from outside.
    ``bearer_tokens`` makes it accept only those static tokens; ``server_auth`` passes sekmet's own ``server_auth``
    settings through (SMART clients and their keys, token lifetime).
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        allow_non_loopback: bool = False,
        validation: ValidationMode = "off",
        bearer_tokens: Sequence[str | SecretStr] = (),
        server_auth: Mapping[str, Any] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        if host not in LOOPBACK_HOSTS and not allow_non_loopback:
            raise ServerConfigError(
                f"refusing to bind the FHIR server to {host!r}: only loopback addresses "
                f"({', '.join(sorted(LOOPBACK_HOSTS))}) are allowed unless allow_non_loopback=True"
            )
        if validation not in ("strict", "warn", "off"):
            raise ServerConfigError(f"validation must be strict, warn or off, not {validation!r}")
        if port is not None and not 0 < port < 65536:
            raise ServerConfigError(f"port must be between 1 and 65535, not {port}")
        if bearer_tokens and server_auth is not None:
            raise ServerConfigError("give bearer_tokens or server_auth, not both")
        self.host = host
        self.validation: ValidationMode = validation
        self.startup_timeout = startup_timeout
        self.persistent = data_dir is not None
        self._data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self._requested_port = port
        self._port: int | None = port
        self._tokens = [t if isinstance(t, SecretStr) else SecretStr(t) for t in bearer_tokens]
        self._server_auth = dict(server_auth) if server_auth is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    # ---------------- properties ----------------

    @property
    def data_dir(self) -> Path:
        """Where the store, settings and log live; a temporary one is made on first use and removed by ``stop()``."""
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="clinicflow-sekmet-"))
        return self._data_dir

    @property
    def port(self) -> int:
        if self._port is None:
            self._port = free_port(self.host)
        return self._port

    @property
    def base_url(self) -> str:
        """The FHIR base, e.g. ``http://127.0.0.1:8123/fhir``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/fhir"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __repr__(self) -> str:  # never the tokens
        where = str(self._data_dir) if self._data_dir is not None else "(temporary)"
        return f"SekmetServer(base_url={self.base_url!r}, data_dir={where!r}, running={self.running})"

    # ---------------- lifecycle ----------------

    def start(self) -> Self:
        """Start the process and wait until it answers; retries on a fresh port when a chosen one was taken."""
        if self.running:
            return self
        attempts = 1 if self._requested_port is not None else _PORT_RETRIES
        for attempt in range(1, attempts + 1):
            self._spawn()
            try:
                self.wait_ready(self.startup_timeout)
                return self
            except ServerStartError as exc:
                self._terminate()
                if attempt == attempts or "address already in use" not in exc.log_tail.lower():
                    raise
                self._port = free_port(self.host)
        raise AssertionError("unreachable")  # pragma: no cover

    def wait_ready(self, timeout: float) -> None:
        """Poll ``GET /metadata`` until it answers 200; ``ServerStartError`` (log tail) if it exits or times out."""
        if self._process is None:
            raise ServerStartError("the server was never started")
        deadline = time.monotonic() + timeout
        url = f"{self.base_url}/metadata"
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while True:
                code = self._process.poll()
                if code is not None:
                    raise ServerStartError(
                        f"sekmet-fhir exited with code {code} during start-up ({self.base_url})",
                        log_tail=self.log_tail(),
                    )
                try:
                    if http.get(url).status_code == 200 and self._process.poll() is None:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"sekmet-fhir did not answer GET {url} within {timeout:.0f} s", log_tail=self.log_tail()
                    )
                time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process (kill it after ``timeout`` seconds); remove a temporary data directory."""
        self._terminate(timeout)
        if not self.persistent and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def wait(self) -> int:
        """Block until the process exits (e.g. on Ctrl-C); its exit code."""
        if self._process is None:
            raise ServerStartError("the server was never started")
        return self._process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log (empty when there is none yet)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ---------------- loading ----------------

    def is_loaded(self, fingerprint: str) -> bool:
        """Whether this store already holds the bundles with ``fingerprint`` (see ``loading.bundles_fingerprint``)."""
        marker = self._read_marker()
        return marker is not None and marker.get("fingerprint") == fingerprint

    def load(
        self, bundles: Iterable[str | Path | Mapping[str, Any]], *, concurrency: int = 4, force: bool = False
    ) -> LoadReport | None:
        """Load bundles (ids kept) unless this store already holds exactly them; ``None`` when skipped."""
        items = list(bundles)
        fingerprint = bundles_fingerprint(items)
        if not force and self.is_loaded(fingerprint):
            return None
        headers = {"Authorization": f"Bearer {self._tokens[0].get_secret_value()}"} if self._tokens else {}
        with httpx.Client(headers=headers, timeout=300.0, trust_env=False) as http:
            report = load_bundles(self.base_url, items, concurrency=concurrency, http=http)
        marker = {
            "fingerprint": fingerprint,
            "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "bundles": len(report.bundles),
            "resources": report.resources,
        }
        (self.data_dir / LOAD_MARKER_FILE).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        return report

    # ---------------- internals ----------------

    def settings(self) -> dict[str, Any]:
        """The settings sekmet is started with (tokens as placeholders: the file itself holds the real ones)."""
        return self._settings(reveal=False)

    def _settings(self, *, reveal: bool) -> dict[str, Any]:
        data_dir = str(self.data_dir)
        if self._server_auth is not None:
            server_auth: dict[str, Any] = self._server_auth if reveal else {"types": self._server_auth.get("types")}
        elif self._tokens:
            tokens = [t.get_secret_value() if reveal else "**********" for t in self._tokens]
            server_auth = {"types": ["bearer"], "tokens": tokens}
        else:
            server_auth = {"types": ["none"]}
        return {
            "base_url": self.base_url,
            "host": self.host,
            "port": self.port,
            "data_dir": data_dir,
            "db_path": str(self.data_dir / DATABASE_FILE),
            "own_private_key_path": str(self.data_dir / "keys" / "sekmet_private.pem"),
            "facility_name": "clinicflow local FHIR server",
            "simulator": {"enabled": False},
            "log_inbound": False,
            "validation": {"inbound": self.validation},
            "server_auth": server_auth,
        }

    def _spawn(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        settings_path = self.data_dir / SETTINGS_FILE
        # JSON is YAML, and it quotes "off" (bare YAML would read it as false).
        settings_path.write_text(json.dumps(self._settings(reveal=True), indent=2), encoding="utf-8")
        settings_path.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if k not in _SEKMET_ENV_OVERRIDES}
        env["PYTHONUNBUFFERED"] = "1"
        command = [sys.executable, "-m", "sekmet.cli", "serve", "--config", str(settings_path)]
        with self.log_path.open("ab") as log:
            log.write(f"--- {datetime.now(UTC).isoformat()} starting on {self.base_url}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command, cwd=self.data_dir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        # A server left behind by a crashed caller would hold its port: end it when this object or Python goes.
        self._finalizer = weakref.finalize(self, _end_process, self._process, 5.0)

    def _terminate(self, timeout: float = 10.0) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._process is not None:
            _end_process(self._process, timeout)
            self._process = None

    def _read_marker(self) -> dict[str, Any] | None:
        if not (self.data_dir / DATABASE_FILE).exists():
            return None
        try:
            marker = json.loads((self.data_dir / LOAD_MARKER_FILE).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return marker if isinstance(marker, dict) else None


def _end_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
