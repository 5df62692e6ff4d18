"""The model-call cache in Redis, so benchmark workers on many machines share one cache.

``RedisCallCache(url)`` implements ``CallCache``: each answer is a JSON string under ``<prefix><call key>``. ``put``
uses ``SET NX``, so the first answer stored under a key wins in every process, and a replay is the same whichever
worker asks. An optional ``ttl_seconds`` lets the server expire entries. A value that cannot be read back (bad JSON,
bad UTF-8, not an object) is a miss, and the next ``put`` replaces it inside a ``WATCH`` transaction, so two workers
replacing the same bad entry still leave one answer.

The client is redis-py's synchronous one on purpose: ``RunModel`` calls ``get``/``put`` inline (as it does with
SQLite), one round trip takes well under a millisecond on a LAN, and a synchronous client works from the event loop
and from the threads that LangChain's sync path uses alike; an async client would need a loop per thread.

Errors (the tree lives in ``simulations.bench.callcache``): a server that cannot be reached or does not answer in
time raises ``CallCacheUnavailableError`` (when the cache is opened, since the constructor pings, and on any later
call), never a hang and never a silent miss. Every message names the URL with its password redacted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from simulations.bench.callcache import CallCacheError, CallCacheUnavailableError

__all__ = ["DEFAULT_PREFIX", "RedisCallCache", "redact_url"]

DEFAULT_PREFIX = "clinicflow:calls:"
CONNECT_TIMEOUT_S = 2.0  # a server that does not accept the connection by then is treated as down
SOCKET_TIMEOUT_S = 5.0  # a reply slower than this (a stalled server) fails the call instead of hanging the attempt
RETRIES = 2  # quick retries absorb a dropped connection; a server that stays down fails within about a second
_GLOB_SPECIAL = "\\*?[]"
_T = TypeVar("_T")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe for messages, logs and run records."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # an unparsable URL (a bad IPv6 host, say): hide everything before the host
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}" if "@" in rest else url
    if password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _decode(raw: bytes | None) -> dict[str, Any] | None:
    """The stored answer, or None when there is none or it cannot be read back."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None
    return value if isinstance(value, dict) else None


class RedisCallCache:
    """The call cache in Redis (see the module docstring). Opening it pings the server, so a bad URL fails here."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl_seconds: int | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        socket_timeout_s: float = SOCKET_TIMEOUT_S,
    ) -> None:
        if ttl_seconds is not None and ttl_seconds < 1:
            raise ValueError(f"ttl_seconds must be at least 1 (or None for no expiry), not {ttl_seconds}")
        self.url = redact_url(url)
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        try:
            self._client: redis.Redis | None = redis.Redis.from_url(
                url,
                socket_connect_timeout=connect_timeout_s,
                socket_timeout=socket_timeout_s,
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), RETRIES),
            )
        except ValueError as exc:  # redis-py's message may quote the URL, password included: use our own
            raise CallCacheError(f"call cache URL {self.url} is not a valid Redis URL") from exc
        try:
            self._call("PING", lambda client: client.ping())
        except CallCacheError:
            self.close()
            raise

    def _redis(self) -> redis.Redis:
        if self._client is None:
            raise CallCacheError(f"call cache {self.url} is closed")
        return self._client

    def _call(self, what: str, operation: Callable[[redis.Redis], _T]) -> _T:
        """Run ``operation(client)``, translating redis-py's errors into the call-cache error tree."""
        try:
            return operation(self._redis())
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise CallCacheUnavailableError(
                f"call cache {self.url} is unreachable ({what}: {type(exc).__name__}: {exc})"
            ) from exc
        except redis.RedisError as exc:
            raise CallCacheError(f"call cache {self.url} failed ({what}: {type(exc).__name__}: {exc})") from exc

    def _key(self, key: str) -> str:
        return self.prefix + key

    def get(self, key: str) -> dict[str, Any] | None:
        return _decode(self._call("GET", lambda client: client.get(self._key(key))))

    def put(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, ensure_ascii=False)
        stored = self._call("SET NX", lambda client: client.set(self._key(key), text, nx=True, ex=self.ttl_seconds))
        if not stored:
            # Something is there already: keep it if readable (first answer wins); else replace it.
            self._call("replace", lambda client: self._replace_unreadable(client, self._key(key), text))

    def _replace_unreadable(self, client: redis.Redis, name: str, text: str) -> None:
        with client.pipeline() as pipe:
            try:
                pipe.watch(name)
                if _decode(pipe.get(name)) is not None:
                    return
                pipe.multi()
                pipe.set(name, text, ex=self.ttl_seconds)
                pipe.execute()
            except redis.WatchError:
                # Another worker wrote the key between our read and write: its answer is the one kept.
                return

    def __len__(self) -> int:
        """Keys under this cache's prefix (SCAN, so a large shared server is never blocked as by KEYS)."""
        pattern = "".join("\\" + c if c in _GLOB_SPECIAL else c for c in self.prefix) + "*"
        return int(self._call("SCAN", lambda client: sum(1 for _ in client.scan_iter(match=pattern, count=1000))))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
