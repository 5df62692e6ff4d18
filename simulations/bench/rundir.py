"""The run directory: one benchmark run's configuration, results and transcripts, safe to resume after a crash.

Layout::

    RUN_DIR/
      config.json        {"run_id", "config", "environment", "resumed": [environment, ...]}
      run.lock           flock'ed by the process running the directory (holds its pid)
      results.jsonl      one AttemptResult per line; a later line for the same attempt key supersedes earlier ones
      results.corrupt    truncated tails cut off results.jsonl, kept with the time they were found
      transcripts/       <name>.json and <name>.md per attempt
      superseded-<UTC>/  an earlier run moved aside by ``force_new`` (nothing is ever deleted)

Durability: each result is one ``os.write`` on an ``O_APPEND`` descriptor followed by ``fsync``, so a process
killed mid-write leaves at most one line without its trailing newline; ``load_results`` cuts that tail off (into
``results.corrupt``) and the attempt is redone. Transcripts are written by rename before their result line, so a
result never points at a missing transcript.

Errors::

    RunDirError              config.json unreadable or invalid, a result from another run appended, bad name
    ├── NotARunError         the directory has no config.json (read_run)
    └── RunDirBusyError      another live process holds the directory's lock
    ConfigMismatchError      (simulations.bench.config) the directory holds a run with a different RunConfig
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ValidationError

from simulations.bench.config import ConfigMismatchError, RunConfig, RunEnvironment
from simulations.bench.records import AttemptResult
from simulations.transcript import _atomic_write, render_markdown

__all__ = [
    "LoadedRun",
    "NotARunError",
    "ResultsLoad",
    "RunDir",
    "RunDirBusyError",
    "RunDirError",
    "read_run",
]

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.jsonl"
CORRUPT_FILE = "results.corrupt"
LOCK_FILE = "run.lock"
TRANSCRIPTS_DIR = "transcripts"
# What force_new moves aside: everything that describes the old run (the lock stays, it is ours).
_RUN_FILES = (CONFIG_FILE, RESULTS_FILE, CORRUPT_FILE, TRANSCRIPTS_DIR, "report.md", "report.html")
_SAFE_NAME = re.compile(r"\A[A-Za-z0-9._-]+\Z")


class RunDirError(Exception):
    """A run directory could not be read or used as asked."""


class NotARunError(RunDirError):
    """The directory holds no ``config.json``: it is not a run directory."""


class RunDirBusyError(RunDirError):
    """Another live process is running this directory (it holds ``run.lock``)."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


@dataclass
class LoadedRun:
    """A run as read from disk, without repairing or locking anything."""

    path: Path
    run_id: str
    config: RunConfig
    environment: RunEnvironment
    results: list[AttemptResult]  # latest line per attempt key, in order of first appearance
    problems: list[str]  # "results.jsonl line N: reason"
    resumed: list[RunEnvironment] = field(default_factory=list)  # one per resume, oldest first


@dataclass
class ResultsLoad:
    """What ``RunDir.load_results`` found: the latest result per attempt key and what it had to skip or repair."""

    latest: dict[str, AttemptResult]
    lines: int  # valid result lines read (superseded ones included)
    problems: list[str]
    repaired_tail: bool


def _now() -> datetime:
    return datetime.now(UTC)


def _validated(model: type[BaseModel], data: Any, source: Path, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in (prefix, *first["loc"]))
        raise RunDirError(f"{source}: field {where!r}: {first['msg']} ({exc.error_count()} problem(s))") from exc


def _read_config(path: Path) -> tuple[dict[str, Any], str, RunConfig, RunEnvironment, list[RunEnvironment]]:
    """Parse ``config.json``; every failure names the file and, where there is one, the field."""
    source = path / CONFIG_FILE
    if not source.is_file():
        raise NotARunError(f"{path} is not a run directory: it has no {CONFIG_FILE}")
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{source}: cannot be read as JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise RunDirError(f"{source}: expected a JSON object, found {type(raw).__name__}")
    run_id = raw.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise RunDirError(f"{source}: field 'run_id' is missing or not a non-empty string")
    for name in ("config", "environment"):
        if not isinstance(raw.get(name), dict):
            raise RunDirError(f"{source}: field {name!r} is missing or not an object")
    config = _validated(RunConfig, raw["config"], source, "config")
    environment = _validated(RunEnvironment, raw["environment"], source, "environment")
    resumed_raw = raw.get("resumed") or []
    if not isinstance(resumed_raw, list):
        raise RunDirError(f"{source}: field 'resumed' is not a list")
    resumed = [_validated(RunEnvironment, item, source, f"resumed.{i}") for i, item in enumerate(resumed_raw)]
    return raw, run_id, config, environment, resumed


def _parse_results(data: bytes, run_id: str) -> tuple[dict[str, AttemptResult], int, list[str]]:
    """Parse complete lines of results.jsonl (the caller strips any unterminated tail first)."""
    latest: dict[str, AttemptResult] = {}
    problems: list[str] = []
    valid = 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            result = AttemptResult.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            reason = f"{where}: {first['msg']}" if where else first["msg"]
            problems.append(f"{RESULTS_FILE} line {number}: not a valid result ({reason}); skipped")
            continue
        if result.run_id != run_id:
            problems.append(f"{RESULTS_FILE} line {number}: run_id {result.run_id!r} is not this run's; skipped")
            continue
        valid += 1
        latest[result.attempt] = result  # a re-assigned key keeps its first position in the dict
    return latest, valid, problems


def _split_tail(data: bytes) -> tuple[bytes, bytes]:
    """(complete lines, unterminated last line); the tail is empty when the data ends with a newline."""
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]


def read_run(path: Path) -> LoadedRun:
    """Read a run directory without locking or repairing it (for reports and comparisons, even of a live run)."""
    path = Path(path)
    _, run_id, config, environment, resumed = _read_config(path)
    results_path = path / RESULTS_FILE
    try:
        data = results_path.read_bytes() if results_path.exists() else b""
    except OSError as exc:
        raise RunDirError(f"{results_path}: cannot be read: {exc}") from exc
    complete, tail = _split_tail(data)
    latest, _, problems = _parse_results(complete, run_id)
    if tail:
        number = complete.count(b"\n") + 1
        problems.append(f"{RESULTS_FILE} line {number}: truncated (no newline at the end); skipped")
    return LoadedRun(path, run_id, config, environment, list(latest.values()), problems, resumed)


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    _atomic_write(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


class RunDir:
    """An open, locked run directory. Use ``RunDir.open(...)``, ideally as a context manager."""

    def __init__(self, path: Path, run_id: str, config: RunConfig, lock_fd: int) -> None:
        self._path = path
        self._run_id = run_id
        self._config = config
        self._lock_fd: int | None = lock_fd
        self._append_fd: int | None = None
        self._latest: dict[str, AttemptResult] | None = None

    # -- opening ----------------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: Path, config: RunConfig, environment: RunEnvironment, *, force_new: bool = False
    ) -> RunDir:
        """Create or resume the run in ``path`` and hold its lock until ``close()``.

        A new directory gets a fresh run id. An existing run with an equal config is resumed (same run id, this
        environment appended to "resumed"); a different config raises ``ConfigMismatchError``. ``force_new``
        moves any existing run into ``superseded-<UTC time>/`` and starts a new one.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(path)
        try:
            run_id = _prepare(path, config, environment, force_new)
            (path / TRANSCRIPTS_DIR).mkdir(exist_ok=True)
        except BaseException:
            os.close(lock_fd)  # closing the descriptor releases the flock
            raise
        return cls(path, run_id, config, lock_fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the lock (the lock file stays: deleting it would race with a process about to take it)."""
        if self._append_fd is not None:
            os.close(self._append_fd)
            self._append_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- properties -------------------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._path

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def config(self) -> RunConfig:
        return self._config

    @property
    def results_path(self) -> Path:
        return self._path / RESULTS_FILE

    @property
    def transcripts_dir(self) -> Path:
        return self._path / TRANSCRIPTS_DIR

    # -- results ----------------------------------------------------------------------------------------------
    def load_results(self) -> ResultsLoad:
        """Read results.jsonl, cutting off a truncated last line (saved to results.corrupt) so appends stay clean."""
        self._check_open()
        data = self.results_path.read_bytes() if self.results_path.exists() else b""
        complete, tail = _split_tail(data)
        if tail:
            self._save_corrupt(tail, line=complete.count(b"\n") + 1)
            # Saved first, then cut: a crash in between leaves the tail in both places, never in neither.
            os.truncate(self.results_path, len(complete))
            _fsync_file(self.results_path)
        latest, lines, problems = _parse_results(complete, self._run_id)
        if tail:
            number = complete.count(b"\n") + 1
            problems.append(
                f"{RESULTS_FILE} line {number}: truncated write ({len(tail)} bytes) cut off into {CORRUPT_FILE}; "
                "its attempt will be redone"
            )
        self._latest = latest
        return ResultsLoad(latest=dict(latest), lines=lines, problems=problems, repaired_tail=bool(tail))

    def finished(self) -> set[str]:
        """Attempt keys whose latest result has status "ok" (errors are retried)."""
        if self._latest is None:
            self.load_results()
        assert self._latest is not None
        return {key for key, result in self._latest.items() if result.status == "ok"}

    def append_result(self, result: AttemptResult) -> None:
        """Append one result line durably: a single write on an O_APPEND descriptor, then fsync."""
        self._check_open()
        if result.run_id != self._run_id:
            raise RunDirError(f"result for {result.attempt!r} has run_id {result.run_id!r}, not {self._run_id!r}")
        if self._latest is None:
            self.load_results()  # repairs a truncated tail first; appending after it would corrupt this line too
        if self._append_fd is None:
            self._append_fd = os.open(self.results_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        view = memoryview((result.model_dump_json() + "\n").encode("utf-8"))
        while view:
            written = os.write(self._append_fd, view)
            view = view[written:]
        os.fsync(self._append_fd)
        assert self._latest is not None
        self._latest[result.attempt] = result

    def write_transcript(self, name: str, transcript: Mapping[str, Any]) -> str:
        """Write transcripts/<name>.json and .md (each by rename); return the JSON path relative to the run."""
        if not _SAFE_NAME.match(name) or name.startswith("."):
            raise RunDirError(f"transcript name {name!r} is not a plain file name")
        _write_json(self.transcripts_dir / f"{name}.json", transcript)
        _atomic_write(self.transcripts_dir / f"{name}.md", render_markdown(transcript))
        return f"{TRANSCRIPTS_DIR}/{name}.json"

    # -- helpers ----------------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise RunDirError(f"{self._path}: the run directory was closed")

    def _save_corrupt(self, tail: bytes, *, line: int) -> None:
        header = f"# {_now().isoformat(timespec='seconds')} {RESULTS_FILE} line {line}: {len(tail)} bytes\n"
        with open(self._path / CORRUPT_FILE, "ab") as handle:
            handle.write(header.encode("utf-8") + tail + b"\n")
            handle.flush()
            os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock(path: Path) -> int:
    """Take the directory's exclusive lock without waiting; write our pid into the lock file."""
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        os.close(fd)
        pid = int(holder) if holder.isdigit() else None
        who = f"pid {pid}" if pid is not None else "another process"
        raise RunDirBusyError(f"{path} is being run by {who}; wait for it to finish or stop it first", pid) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def _prepare(path: Path, config: RunConfig, environment: RunEnvironment, force_new: bool) -> str:
    """With the lock held: resume the existing run, refuse a different one, or start a new one; return the run id."""
    config_path = path / CONFIG_FILE
    if config_path.exists() and not force_new:
        try:
            raw, run_id, old_config, _, _ = _read_config(path)
        except RunDirError as exc:
            raise RunDirError(f"{exc}\nFix the file, or use --force-new to move this run aside and start over.") from exc
        differences = old_config.differences(config)
        if differences:
            raise ConfigMismatchError(str(path), differences)
        raw["resumed"] = [*(raw.get("resumed") or []), environment.model_dump(mode="json")]
        _write_json(config_path, raw)
        return run_id
    if force_new:
        _supersede(path)
    run_id = f"{path.resolve().name}-{secrets.token_hex(4)}"
    document = {"run_id": run_id, "config": config.model_dump(mode="json"),
                "environment": environment.model_dump(mode="json"), "resumed": []}
    _write_json(config_path, document)
    return run_id


def _supersede(path: Path) -> Path | None:
    """Move the files of the run in ``path`` into a fresh ``superseded-<UTC time>/`` folder (nothing is deleted)."""
    present = [path / name for name in _RUN_FILES if (path / name).exists()]
    if not present:
        return None
    stamp = _now().strftime("%Y%m%dT%H%M%SZ")
    target = path / f"superseded-{stamp}"
    suffix = 1
    while target.exists():
        target = path / f"superseded-{stamp}-{suffix}"
        suffix += 1
    target.mkdir()
    for item in present:
        os.replace(item, target / item.name)
    return target
