"""Checkpointers for the consultation graph: SQLite on disk by default, Redis to share across processes and
machines, in memory for tests.

Every graph step is checkpointed, so a consultation interrupted by a crash, Ctrl-C or a pause for a clinician's
answer resumes from where it stopped, on this process or (with Redis) on any other one.

``open_checkpointer(target)`` picks the store from ``target``: ``None`` or ``":memory:"``, a ``redis://`` or
``rediss://`` URL, or else a SQLite path. Errors (the URL in a message never carries its password)::

    CheckpointerError               the checkpoint store cannot be opened
    ├── CheckpointerUnreachable     nothing answered at the Redis URL in time (refused, timed out, unknown host)
    └── CheckpointerSetupError      a malformed URL, something that is not Redis, or a Redis that cannot hold
                                    checkpoints (refused the login, lacks the search / JSON modules of Redis 8
                                    or Redis Stack)

The SQLite saver is langgraph-checkpoint-sqlite's own ``SqliteSaver``, driven inline from async code. Its async
sibling hands each statement to a helper thread and back (aiosqlite), which cost about 4 ms per graph step on two
busy cores; a WAL-mode insert made directly takes a fraction of a millisecond, far below what a model call takes,
so running it on the event loop is the cheaper way to get the same durable checkpoints.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

__all__ = [
    "CheckpointerError",
    "CheckpointerSetupError",
    "CheckpointerUnreachable",
    "InlineSqliteSaver",
    "describe_target",
    "is_redis_url",
    "open_checkpointer",
    "redact_url",
]

REDIS_SCHEMES = ("redis", "rediss")
# A Redis that is down or firewalled must fail in seconds, not hang: connecting gets this long...
REDIS_CONNECT_TIMEOUT_S = 5.0
# ...any one command this long (an FT.SEARCH over a large thread list stays far below it)...
REDIS_COMMAND_TIMEOUT_S = 30.0
# ...and the first PING, with redis-py's own retries, this long in all.
REDIS_OPEN_TIMEOUT_S = 15.0


class CheckpointerError(Exception):
    """The checkpoint store cannot be opened; the message names it (a URL without its password)."""


class CheckpointerUnreachable(CheckpointerError):
    """Nothing answered at the Redis URL in time."""


class CheckpointerSetupError(CheckpointerError):
    """Redis answered but cannot hold checkpoints (authentication, missing search or JSON modules)."""


class InlineSqliteSaver(SqliteSaver):
    """``SqliteSaver`` whose async methods run the same statements directly (no thread hop per statement)."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)


def _connect(path: Path) -> sqlite3.Connection:
    # check_same_thread=False: the saver serialises access with its own lock. WAL with synchronous=NORMAL makes
    # each commit survive a killed process (what resuming needs) without an fsync per checkpoint; only a power cut
    # can lose the last few steps.
    conn = sqlite3.connect(str(path), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def is_redis_url(target: str | Path | None) -> bool:
    """Whether ``target`` names a Redis server (``redis://`` or ``rediss://``) rather than a SQLite file."""
    return isinstance(target, str) and urlsplit(target).scheme.lower() in REDIS_SCHEMES


def redact_url(url: str) -> str:
    """``url`` with its user name and password (in the authority or a ``?password=`` query) replaced by ``***``,
    so it can be shown, logged or stored."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])
    if parts.query:
        # redis-py also takes credentials as query parameters (redis://host/0?password=...).
        pairs = [pair.partition("=") for pair in parts.query.split("&")]
        parts = parts._replace(query="&".join(
            f"{key}=***" if key.lower() in ("password", "username") else f"{key}{eq}{value}"
            for key, eq, value in pairs
        ))
    return urlunsplit(parts)


def describe_target(target: str | Path | None) -> str:
    """How a checkpointer target is shown to a person: memory, a redacted Redis URL, or the SQLite path."""
    if target is None or str(target) == ":memory:":
        return ":memory:"
    return redact_url(target) if is_redis_url(target) else str(target)


@asynccontextmanager
async def open_checkpointer(
    target: str | Path | None, *, ttl_minutes: float | None = None
) -> AsyncIterator[BaseCheckpointSaver]:
    """Open a checkpointer for ``target`` and close it on exit.

    ``None`` or ``":memory:"`` keeps checkpoints in memory; ``redis://HOST:PORT/DB`` (or ``rediss://``) stores them
    in Redis with langgraph-checkpoint-redis, each key expiring ``ttl_minutes`` after its last read or write when
    given (Redis only; SQLite and memory keep everything); anything else is a SQLite file, made if absent.
    """
    if target is None or str(target) == ":memory:":
        yield InMemorySaver()
        return
    if is_redis_url(target):
        assert isinstance(target, str)
        async with _open_redis(target, ttl_minutes) as saver:
            yield saver
        return
    path = Path(target).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(path)
    try:
        yield InlineSqliteSaver(conn)
    finally:
        conn.close()


@asynccontextmanager
async def _open_redis(url: str, ttl_minutes: float | None) -> AsyncIterator[BaseCheckpointSaver]:
    # Imported here: a SQLite-only run never loads redis, redisvl and their dependencies.
    import redis.exceptions
    from langgraph.checkpoint.redis.aio import AsyncRedisSaver
    from redis.asyncio import Redis
    from redisvl.exceptions import RedisVLError

    shown = redact_url(url)
    if ttl_minutes is not None and ttl_minutes <= 0:
        raise ValueError(f"ttl_minutes must be positive, not {ttl_minutes}")
    # Our own client rather than the saver's URL form: the saver's factory sets no timeouts (an unreachable host
    # would hang on the OS connect timeout) and reads REDIS_URL from the environment when the URL is empty.
    # protocol=2 is what that factory uses too: redisvl parses FT.SEARCH replies in the RESP2 shape.
    try:
        client = Redis.from_url(url, protocol=2, socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
                                socket_timeout=REDIS_COMMAND_TIMEOUT_S)
    except ValueError as exc:  # a malformed URL: a bad port, an unknown option
        raise CheckpointerSetupError(f"not a usable Redis URL: {shown} ({exc})") from exc
    try:
        try:
            await asyncio.wait_for(client.ping(), REDIS_OPEN_TIMEOUT_S)
            ttl = {"default_ttl": ttl_minutes, "refresh_on_read": True} if ttl_minutes is not None else None
            saver = AsyncRedisSaver(redis_client=client, ttl=ttl)
            await saver.asetup()
        except redis.exceptions.AuthenticationError as exc:
            raise CheckpointerSetupError(f"Redis at {shown} refused the login: {exc}") from exc
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, TimeoutError, OSError) as exc:
            reason = str(exc) or f"no answer within {REDIS_OPEN_TIMEOUT_S:g} s"
            raise CheckpointerUnreachable(f"cannot reach the Redis checkpointer at {shown}: {reason}") from exc
        except (redis.exceptions.ResponseError, RedisVLError) as exc:
            # redisvl wraps the server's refusal to create the indexes: "unknown command 'FT.CREATE'" from a Redis
            # without the modules, "Cannot create index on db != 0" from one whose search works in database 0 only.
            raise CheckpointerSetupError(
                f"Redis at {shown} cannot hold checkpoints: {exc}. Checkpoints need the search and JSON modules "
                "(Redis 8, or Redis Stack) and a database where search indexes can be created (0 on most servers)"
            ) from exc
        except redis.exceptions.RedisError as exc:  # e.g. InvalidResponse: something answered, but not as Redis
            raise CheckpointerSetupError(f"{shown} did not answer as a Redis server: {exc}") from exc
        yield saver
    finally:
        await client.aclose()
