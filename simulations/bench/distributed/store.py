"""A distributed run's state in Redis: what was planned, what finished, what is running, who did it.

Keys, all under ``clinicflow:run:<run_id>:``::

    record       JSON: run id, RunConfig, the selected cases (so workers need no local files), options, environment
    results      hash attempt key -> AttemptResult JSON (see ``store_outcome`` for the write rule)
    transcripts  hash attempt key -> transcript JSON of the attempt's stored result
    tracebacks   hash attempt key -> traceback text of an error result
    running      hash attempt key -> JSON {"worker", "started_at"} (advisory: a killed worker's entry stays until the
                 attempt finishes elsewhere)
    workers      hash "<worker id>|finished" (count), "<worker id>|first", "<worker id>|last" (UTC times)

The write rule keeps a finished attempt counted once however often it is delivered: a result is stored when the
attempt has none yet, or when the stored one is an error and the new one is ok; anything else is dropped. One Lua
script applies the rule and writes the result, its transcript, the running entry and the worker's count together,
so concurrent workers (and a redelivered copy of a task) can never both count an attempt.

Errors::

    QueueError     the queue URL cannot be reached or does not answer (the message names it, password redacted),
                   or a run id is unknown
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from simulations.bench.config import RunConfig, RunEnvironment
from simulations.bench.plan import BenchPlan
from simulations.bench.records import AttemptResult
from simulations.bench.rediscache import redact_url
from simulations.cases import Case

__all__ = ["KEY_PREFIX", "QueueError", "RunRecord", "RunStatus", "RunStore", "WorkerStats"]

KEY_PREFIX = "clinicflow:run:"
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 10.0
# A server that restarts (or a dropped connection) is retried for about half a minute before an operation fails.
RETRIES = 12
BACKOFF_CAP_S = 3.0

_STORE_SCRIPT = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  if cjson.decode(old)['status'] == 'ok' or ARGV[3] ~= 'ok' then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
else
  redis.call('HDEL', KEYS[2], ARGV[1])
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
else
  redis.call('HDEL', KEYS[3], ARGV[1])
end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HINCRBY', KEYS[5], ARGV[6] .. '|finished', 1)
redis.call('HSETNX', KEYS[5], ARGV[6] .. '|first', ARGV[7])
redis.call('HSET', KEYS[5], ARGV[6] .. '|last', ARGV[7])
return 1
"""


class QueueError(Exception):
    """The queue (its Redis) cannot be used as asked; the message names the URL with its password redacted."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunRecord:
    """What a run's workers need: its id, the plan (config and cases), run options and the enqueuing environment."""

    run_id: str
    plan: BenchPlan
    environment: RunEnvironment
    max_connections: int = 32
    local_connections: int = 1
    cache_url: str | None = None  # a redis:// model-call cache shared by every worker; None: no cache

    def to_json(self) -> str:
        return json.dumps({
            "run_id": self.run_id,
            "config": self.plan.config.model_dump(mode="json"),
            "cases": [case.model_dump(mode="json") for case in self.plan.cases],
            "environment": self.environment.model_dump(mode="json"),
            "max_connections": self.max_connections,
            "local_connections": self.local_connections,
            "cache_url": self.cache_url,
        })

    @classmethod
    def from_json(cls, text: str | bytes) -> RunRecord:
        raw = json.loads(text)
        plan = BenchPlan(config=RunConfig.model_validate(raw["config"]),
                         cases=[Case.model_validate(case) for case in raw["cases"]])
        return cls(run_id=raw["run_id"], plan=plan, environment=RunEnvironment.model_validate(raw["environment"]),
                   max_connections=raw.get("max_connections", 32), local_connections=raw.get("local_connections", 1),
                   cache_url=raw.get("cache_url"))


@dataclass
class WorkerStats:
    worker: str
    finished: int
    first: str
    last: str

    @property
    def per_minute(self) -> float:
        """Attempts per minute between this worker's first and last finish (0 with fewer than two)."""
        seconds = (datetime.fromisoformat(self.last) - datetime.fromisoformat(self.first)).total_seconds()
        return (self.finished - 1) * 60.0 / seconds if self.finished > 1 and seconds > 0 else 0.0


@dataclass
class RunStatus:
    run_id: str
    planned: int
    done: int  # attempts with a result (ok or error)
    failed: int  # of which errors
    running: int
    correct: int = 0
    judged: int = 0
    workers: list[WorkerStats] = field(default_factory=list)

    @property
    def queued(self) -> int:
        return max(self.planned - self.done - self.running, 0)


class RunStore:
    """The Redis side of distributed runs (see the module docstring); thread-safe (redis-py's pool)."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self._client = redis.Redis.from_url(
                url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S,
                retry=Retry(ExponentialBackoff(cap=BACKOFF_CAP_S, base=0.1), RETRIES),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            )
        except ValueError as exc:
            raise QueueError(f"{redact_url(url)} is not a Redis URL: {exc}") from exc
        self._store = self._client.register_script(_STORE_SCRIPT)

    def close(self) -> None:
        self._client.close()

    def ping(self) -> None:
        """Fail fast (one try, about ``CONNECT_TIMEOUT_S``) with ``QueueError`` when the server is not there."""
        probe = redis.Redis.from_url(self.url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                     socket_timeout=CONNECT_TIMEOUT_S, retry=Retry(ExponentialBackoff(), 0))
        try:
            probe.ping()
        except redis.RedisError as exc:
            raise QueueError(f"the queue at {redact_url(self.url)} cannot be reached: {exc}") from exc
        finally:
            probe.close()

    @staticmethod
    def key(run_id: str, name: str) -> str:
        return f"{KEY_PREFIX}{run_id}:{name}"

    # -- the run record ---------------------------------------------------------------------------------------
    def save_record(self, record: RunRecord) -> None:
        self._client.set(self.key(record.run_id, "record"), record.to_json())

    def load_record(self, run_id: str) -> RunRecord:
        raw = self._client.get(self.key(run_id, "record"))
        if raw is None:
            raise QueueError(f"no run {run_id!r} in the queue at {redact_url(self.url)}")
        return RunRecord.from_json(raw)

    # -- attempts ---------------------------------------------------------------------------------------------
    def results(self, run_id: str) -> dict[str, AttemptResult]:
        raw = self._client.hgetall(self.key(run_id, "results"))
        return {key.decode(): AttemptResult.model_validate_json(value) for key, value in raw.items()}

    def finished_ok(self, run_id: str) -> set[str]:
        return {key for key, result in self.results(run_id).items() if result.status == "ok"}

    def is_finished_ok(self, run_id: str, key: str) -> bool:
        raw = self._client.hget(self.key(run_id, "results"), key)
        return raw is not None and AttemptResult.model_validate_json(raw).status == "ok"

    def transcript(self, run_id: str, key: str) -> dict[str, Any] | None:
        raw = self._client.hget(self.key(run_id, "transcripts"), key)
        return json.loads(raw) if raw is not None else None

    def traceback(self, run_id: str, key: str) -> str | None:
        raw = self._client.hget(self.key(run_id, "tracebacks"), key)
        return raw.decode() if raw is not None else None

    def mark_running(self, run_id: str, key: str, worker: str) -> None:
        self._client.hset(self.key(run_id, "running"), key, json.dumps({"worker": worker, "started_at": _now()}))

    def store_outcome(self, run_id: str, result: AttemptResult, transcript: Mapping[str, Any] | None,
                      traceback: str | None, worker: str) -> bool:
        """Store an attempt's result by the write rule (module docstring); True when it was stored."""
        keys = [self.key(run_id, name) for name in ("results", "transcripts", "tracebacks", "running", "workers")]
        args = [result.attempt, result.model_dump_json(), result.status,
                json.dumps(transcript, ensure_ascii=False) if transcript is not None else "", traceback or "",
                worker, _now()]
        return bool(self._store(keys=keys, args=args))

    def status(self, run_id: str) -> RunStatus:
        record = self.load_record(run_id)
        results = self.results(run_id)
        running = {key.decode() for key in self._client.hkeys(self.key(run_id, "running"))} - set(results)
        judged = [r for r in results.values() if r.status == "ok" and r.correct is not None]
        status = RunStatus(run_id, planned=len(record.plan.attempts()), done=len(results),
                           failed=sum(r.status == "error" for r in results.values()), running=len(running),
                           judged=len(judged), correct=sum(bool(r.correct) for r in judged))
        fields = {k.decode(): v.decode() for k, v in self._client.hgetall(self.key(run_id, "workers")).items()}
        for name in sorted({f.rpartition("|")[0] for f in fields}):
            status.workers.append(WorkerStats(name, int(fields.get(f"{name}|finished", 0)),
                                              fields.get(f"{name}|first", ""), fields.get(f"{name}|last", "")))
        return status
