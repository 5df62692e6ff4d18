"""The one place HTTP leaves the FHIR client: write guard, URL confinement, concurrency bound, retries.

Every request, whatever public method started it, goes through `FhirSession.send`, so the read-only rule and the
base-URL rule cannot be bypassed by a new code path. Redirects are not followed by httpx: a GET redirect is
followed here only when its target is itself under the base.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urljoin

import httpx

from .errors import FhirStatusError, FhirTimeoutError, FhirTransportError, WriteNotAllowedError
from .limits import ClientLimits
from .redaction import redact_text, redact_url
from .responses import decode_fhir, error_for
from .retry import RetryPolicy, is_retryable_exception, retry_after_seconds
from .urls import BaseUrl, confine

__all__ = ["FHIR_JSON", "FhirSession", "Sleep"]

logger = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
Sleep = Callable[[float], Awaitable[None]]

_READ_VERBS = frozenset({"GET", "HEAD"})
_IDEMPOTENT_VERBS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


class FhirSession:
    """Sends requests for one `FhirClient`; counts every request put on the wire in ``round_trips``."""

    def __init__(
        self,
        base: BaseUrl,
        http: httpx.AsyncClient,
        *,
        auth: httpx.Auth | None,
        limits: ClientLimits,
        retry: RetryPolicy,
        allow_writes: bool,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._base = base
        self._http = http
        self._auth = auth
        self._retry = retry
        self._allow_writes = allow_writes
        self._sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self._semaphore = asyncio.Semaphore(limits.max_concurrency)
        self.round_trips = 0

    @property
    def allow_writes(self) -> bool:
        return self._allow_writes

    def __repr__(self) -> str:
        return f"FhirSession(base={self._base.url!r}, allow_writes={self._allow_writes})"

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one request (retrying as the policy allows) and return the FHIR JSON answer."""
        method = method.upper()
        if method not in _READ_VERBS and not self._allow_writes:
            raise WriteNotAllowedError(
                f"{method} {redact_url(url)} refused: this FHIR client is read-only (allow_writes=False)"
            )
        target = httpx.URL(confine(self._base, url))
        if params:
            target = target.copy_merge_params(list(params))
        content = json.dumps(body).encode("utf-8") if body is not None else None
        for _hop in range(_MAX_REDIRECTS + 1):
            response, attempts = await self._with_retries(method, target, content)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                break
            shown = redact_url(target)
            if method not in _READ_VERBS:
                raise error_for(response, method=method, url=shown, attempts=attempts)
            # confine() raises UrlOutsideBaseError for a redirect that leaves the base: it is never fetched.
            target = httpx.URL(confine(self._base, urljoin(str(target), location)))
            logger.debug("%s %s redirected to %s", method, shown, redact_url(target))
        else:
            raise FhirStatusError(
                f"{method} {redact_url(target)} redirected more than {_MAX_REDIRECTS} times",
                method=method,
                url=redact_url(target),
                status=response.status_code,
            )
        if method == "HEAD" and response.is_success:
            return {}
        return decode_fhir(response, method=method, url=redact_url(target), attempts=attempts)

    async def _attempt(self, method: str, target: httpx.URL, content: bytes | None) -> httpx.Response:
        headers = {"Accept": FHIR_JSON}
        if content is not None:
            headers["Content-Type"] = FHIR_JSON
        async with self._semaphore:
            self.round_trips += 1
            return await self._http.request(
                method,
                target,
                content=content,
                headers=headers,
                auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
                follow_redirects=False,
            )

    async def _with_retries(self, method: str, target: httpx.URL, content: bytes | None) -> tuple[httpx.Response, int]:
        idempotent = method in _IDEMPOTENT_VERBS
        shown = redact_url(target)
        policy = self._retry
        for attempt in range(1, policy.max_attempts + 1):
            started = time.perf_counter()
            try:
                response = await self._attempt(method, target, content)
            except httpx.TransportError as exc:
                if attempt < policy.max_attempts and is_retryable_exception(exc, idempotent=idempotent):
                    await self._pause(method, shown, type(exc).__name__, attempt, None)
                    continue
                raise self._transport_error(method, shown, exc, attempt) from exc
            except httpx.RequestError as exc:  # decoding and other request failures: not worth a retry
                raise self._transport_error(method, shown, exc, attempt) from exc
            logger.debug(
                "%s %s -> %d (%.0f ms, attempt %d)",
                method,
                shown,
                response.status_code,
                (time.perf_counter() - started) * 1000,
                attempt,
            )
            status = response.status_code
            retryable = policy.retries_status(status) and (idempotent or status == 429)
            if retryable and attempt < policy.max_attempts:
                wait_hint = retry_after_seconds(response.headers.get("retry-after"))
                await self._pause(method, shown, f"HTTP {status}", attempt, wait_hint)
                continue
            return response, attempt
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def _pause(self, method: str, shown: str, why: str, attempt: int, retry_after: float | None) -> None:
        delay = self._retry.delay(attempt - 1, retry_after, self._rng)
        logger.warning(
            "%s %s failed with %s; retry %d of %d in %.2f s",
            method,
            shown,
            why,
            attempt,
            self._retry.max_attempts - 1,
            delay,
        )
        await self._sleep(delay)

    @staticmethod
    def _transport_error(method: str, shown: str, exc: httpx.RequestError, attempts: int) -> FhirTransportError:
        cls = FhirTimeoutError if isinstance(exc, httpx.TimeoutException) else FhirTransportError
        what = "timed out" if cls is FhirTimeoutError else "could not be completed"
        detail = redact_text(str(exc))[:200] or type(exc).__name__
        return cls(
            f"{method} {shown} {what} after {attempts} attempt{'s' if attempts != 1 else ''}: "
            f"{type(exc).__name__}: {detail}",
            method=method,
            url=shown,
            attempts=attempts,
        )
