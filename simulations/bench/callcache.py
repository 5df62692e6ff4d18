"""A cache of model calls, so a rerun with the same cache replays every answer exactly.

A call is keyed by ``call_key(spec, messages, params)``: the model spec, the messages and the generation
parameters, hashed from a canonical JSON form so the key is the same in every process and Python run. The first
answer stored under a key wins (later ``put``s of the same key are ignored), so two attempts that race to fill the
same entry still replay one answer from then on.

``SqliteCallCache`` keeps the cache in one SQLite file in WAL mode: many processes may read and write it at once
(``busy_timeout`` waits out a writer), and each statement takes well under a millisecond, so it is called inline
from the event loop. A value that cannot be read back (bad JSON) is treated as a miss and replaced by the next put.
``RedisCallCache`` (``simulations.bench.rediscache``) keeps it in Redis so workers on many machines share it;
``open_call_cache(target)`` picks the store from a path or a ``redis://``/``rediss://`` URL.

Errors::

    CallCacheError                  the cache cannot be used (bad target, or a store's own failure)
    └── CallCacheUnavailableError   the store could not be reached or did not answer in time (Redis down, timeout)
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Self

from langchain_core.messages import BaseMessage

__all__ = [
    "CallCache",
    "CallCacheError",
    "CallCacheUnavailableError",
    "SqliteCallCache",
    "call_key",
    "open_call_cache",
]

REDIS_SCHEMES: tuple[str, ...] = ("redis://", "rediss://")
# scheme:/ with a scheme of two letters or more (so a Windows drive, C:/, is still a path).
_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")

_SCHEMA = "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at TEXT)"


class CallCacheError(Exception):
    """The model-call cache cannot be used; the message names the store (passwords redacted)."""


class CallCacheUnavailableError(CallCacheError):
    """The cache's server could not be reached, refused us, or did not answer within its timeout."""


class CallCache(Protocol):
    """Where model answers are stored by call key."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer, or None for a miss (including an unreadable entry)."""

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store an answer unless one is already stored under ``key`` (first answer wins)."""

    def close(self) -> None:
        """Release the store's resources."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def call_key(spec: str, messages: Sequence[BaseMessage], params: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the spec, the messages (type, content, name) and the non-None params."""
    document = {
        "spec": spec,
        "messages": [[message.type, message.content, message.name] for message in messages],
        "params": {name: value for name, value in params.items() if value is not None},
    }
    return hashlib.sha256(_canonical(document).encode("utf-8")).hexdigest()


class SqliteCallCache:
    """The call cache in one SQLite file (WAL), shared safely by the roles of one loop and by several processes."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30_000) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: each statement commits on its own, so no transaction is held across awaits.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a killed process loses nothing committed; only a power cut may drop the last entries,
        # which costs a re-asked model call, not a wrong answer.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"call cache {self.path} is closed")
        return self._conn

    def _read(self, key: str) -> tuple[bool, dict[str, Any] | None]:
        """(row exists, readable value)."""
        row = self._db().execute("SELECT value FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            return False, None
        try:
            value = json.loads(row[0])
        except (TypeError, json.JSONDecodeError):
            return True, None
        return True, value if isinstance(value, dict) else None

    def get(self, key: str) -> dict[str, Any] | None:
        return self._read(key)[1]

    def put(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, ensure_ascii=False)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        exists, readable = self._read(key)
        # Keep the first readable answer; only an unreadable entry is replaced.
        verb = "INSERT OR REPLACE" if exists and readable is None else "INSERT OR IGNORE"
        self._db().execute(f"{verb} INTO calls (key, value, created_at) VALUES (?, ?, ?)", (key, text, stamp))

    def __len__(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_call_cache(target: str | Path) -> CallCache:
    """The call cache at ``target``: a ``redis://`` or ``rediss://`` URL opens ``RedisCallCache`` (raising
    ``CallCacheUnavailableError`` at once if the server does not answer); any other URL-like target raises
    ``CallCacheError``; anything else is a SQLite file path."""
    text = str(target)
    if isinstance(target, str) and text.lower().startswith(REDIS_SCHEMES):
        # Imported here so SQLite-only runs never load the Redis client.
        from simulations.bench.rediscache import RedisCallCache

        return RedisCallCache(target)
    if _URL_LIKE.match(text):
        # Another scheme, or a redis URL whose "//" a Path folded away: a SQLite file named after it would
        # silently cache on this machine only.
        scheme = text.split(":", 1)[0]
        raise CallCacheError(f"call cache {scheme}:... is not a redis:// or rediss:// URL (pass URLs as strings, "
                             f"not Paths) nor a plain file path")
    return SqliteCallCache(target)
