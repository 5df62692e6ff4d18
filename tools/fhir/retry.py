"""When to retry a FHIR request and how long to wait: pure rules, unit-tested without a server.

Retried: 429 and 500/502/503/504 answers, and transport failures (connection refused or reset, timeouts, a
server closing mid-answer). A non-idempotent request (a POST transaction) is retried only when it provably never
reached the server (the connection could not be opened), because replaying a half-applied transaction would write
twice. Waits grow exponentially with full jitter (uniform in ``[0, min(max_delay, base_delay * 2**attempt)]``),
so many clients backing off together spread out; a server's ``Retry-After`` (seconds or an HTTP date) replaces
the computed wait, capped at ``max_delay`` so a hostile or confused server cannot park the client.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from .errors import FhirConfigError

__all__ = ["RetryPolicy", "is_retryable_exception", "retry_after_seconds"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently the client retries; ``max_attempts`` counts the first try."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: bool = True
    retry_statuses: frozenset[int] = field(default=frozenset({429, 500, 502, 503, 504}))

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise FhirConfigError(f"invalid retry policy {self!r}: attempts must be >= 1 and delays >= 0")

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return (rng or random).uniform(0.0, ceiling) if self.jitter else ceiling

    def retries_status(self, status: int) -> bool:
        """Is an answer with this status worth another try?"""
        return status in self.retry_statuses


def is_retryable_exception(exc: httpx.TransportError, *, idempotent: bool) -> bool:
    """Is a transport failure worth another try? Non-idempotent requests only when nothing was sent."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return True
    if not idempotent:
        return False
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse ``Retry-After`` (delta seconds or an HTTP date); None when absent or unreadable, never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return None if math.isnan(seconds) else max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
