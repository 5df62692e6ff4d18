"""`FhirClient`: an async FHIR R4 client over one long-lived `httpx.AsyncClient`, confined to one base URL.

Read-only unless built with ``allow_writes=True``; every request goes through `session.FhirSession` (write
guard, URL confinement, a semaphore of ``limits.max_concurrency``, retries with backoff). Resources come back as
`Resource` values validated with `fhir.resources.R4B` (``validate=False`` skips it); searches follow `next`
links within ``limits``. Errors are the `errors.FhirError` tree. The client never shows its auth in a repr.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from .bundle import follow_pages
from .capability import offered_types, operation_listed
from .errors import FhirConfigError, InvalidRequestError
from .limits import ClientLimits
from .patient_record import RecordStrategy, fetch_patient_record
from .references import check_id, check_type, parse_reference
from .resource import Resource, SearchResult
from .retry import RetryPolicy
from .search import SearchParams, normalise_params
from .session import FhirSession, Sleep
from .urls import parse_base_url
from .validation import to_resource

__all__ = ["FhirClient"]

_DEFAULT_LIMITS = ClientLimits()
_DEFAULT_RETRY = RetryPolicy()


class FhirClient:
    """Async FHIR R4 client for one base URL; use ``async with FhirClient(...) as fhir:``.

    ``http`` injects a ready `httpx.AsyncClient` (its timeouts and transport are then used, and it is not closed
    here); otherwise one is built from ``transport`` and ``timeout``. ``auth`` is applied per request either way.
    ``sleep`` and ``rng`` make retry waits testable.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        limits: ClientLimits = _DEFAULT_LIMITS,
        retry: RetryPolicy = _DEFAULT_RETRY,
        allow_writes: bool = False,
        validate: bool = True,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._base = parse_base_url(base_url)
        if http is not None and transport is not None:
            raise FhirConfigError("pass either http (a ready AsyncClient) or transport, not both")
        if timeout <= 0:
            raise FhirConfigError(f"timeout must be positive, got {timeout!r}")
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=limits.max_concurrency, max_keepalive_connections=limits.max_concurrency
            ),
            follow_redirects=False,  # the session follows redirects itself, only under the base
            trust_env=False,  # proxies and .netrc from the environment are the application's decision
        )
        self.limits = limits
        self.validate = validate
        self._session = FhirSession(
            self._base,
            self._http,
            auth=auth,
            limits=limits,
            retry=retry,
            allow_writes=allow_writes,
            sleep=sleep,
            rng=rng,
        )
        self._capabilities: dict[str, Any] | None = None
        self._capabilities_lock = asyncio.Lock()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this client built it (an injected one belongs to the caller)."""
        if not self._closed:
            self._closed = True
            if self._owns_http:
                await self._http.aclose()

    def __repr__(self) -> str:
        return f"FhirClient(base_url={self._base.url!r}, allow_writes={self.allow_writes}, validate={self.validate})"

    # -- facts -------------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The normalised base URL every request stays under."""
        return self._base.url

    @property
    def allow_writes(self) -> bool:
        """Fixed at construction: a record or a model cannot switch writes on."""
        return self._session.allow_writes

    @property
    def round_trips(self) -> int:
        """HTTP requests actually sent, retries and redirects included (auth token requests not counted)."""
        return self._session.round_trips

    # -- server capabilities -----------------------------------------------------------------------------------
    async def capabilities(self) -> dict[str, Any]:
        """The server's CapabilityStatement (``GET metadata``), fetched once and cached; failures are not cached."""
        async with self._capabilities_lock:
            if self._capabilities is None:
                self._capabilities = await self._session.send("GET", "metadata")
            return self._capabilities

    async def supports_operation(self, resource_type: str, operation: str) -> bool:
        """Does the CapabilityStatement list ``operation`` (``everything`` or ``$everything``) for the type?"""
        return operation_listed(await self.capabilities(), check_type(resource_type), operation)

    async def resource_types(self) -> frozenset[str]:
        """The resource types the CapabilityStatement lists (empty if it lists none)."""
        return offered_types(await self.capabilities())

    # -- reads -------------------------------------------------------------------------------------------------
    async def read(self, resource_type: str, resource_id: str) -> Resource:
        """``GET Type/id``."""
        path = f"{check_type(resource_type)}/{check_id(resource_id)}"
        return to_resource(await self._session.send("GET", path), validate=self.validate)

    async def vread(self, resource_type: str, resource_id: str, version: str) -> Resource:
        """``GET Type/id/_history/version``."""
        path = f"{check_type(resource_type)}/{check_id(resource_id)}/_history/{check_id(version, 'version id')}"
        return to_resource(await self._session.send("GET", path), validate=self.validate)

    async def resolve(self, reference: str) -> Resource:
        """Fetch what a reference names: ``Type/id``, ``Type/id/_history/v`` or an absolute URL under the base."""
        parsed = parse_reference(self._base, reference)
        return to_resource(await self._session.send("GET", parsed.path), validate=self.validate)

    async def get_url(self, url: str) -> dict[str, Any]:
        """GET a URL a model wrote (absolute under the base, or relative such as ``Observation?patient=1``).

        Confined to the base URL and GET only; returns the raw JSON of the single answer (no paging).
        """
        return await self._session.send("GET", url)

    # -- searches ----------------------------------------------------------------------------------------------
    async def search(
        self,
        resource_type: str,
        params: SearchParams | None = None,
        *,
        max_pages: int | None = None,
        max_resources: int | None = None,
    ) -> SearchResult:
        """``GET Type?params`` and every `next` page, within ``max_pages`` / ``max_resources`` (else limits')."""
        return await self.search_url(
            check_type(resource_type), params, max_pages=max_pages, max_resources=max_resources
        )

    async def search_url(
        self,
        url: str,
        params: SearchParams | None = None,
        *,
        max_pages: int | None = None,
        max_resources: int | None = None,
    ) -> SearchResult:
        """Search from any URL under the base (``Observation?code=x``, ``Patient/1/$everything``), following pages."""
        pages = self.limits.max_pages if max_pages is None else max_pages
        resources = self.limits.max_resources if max_resources is None else max_resources
        if pages < 1 or resources < 1:
            raise InvalidRequestError(f"max_pages and max_resources must be >= 1, got {pages} and {resources}")
        return await follow_pages(
            self._fetch_page,
            self._base,
            url,
            normalise_params(params),
            max_pages=pages,
            max_resources=resources,
            validate=self.validate,
        )

    async def _fetch_page(self, url: str, params: Sequence[tuple[str, str]] | None) -> dict[str, Any]:
        return await self._session.send("GET", url, params=params)

    async def everything(
        self, patient_id: str, *, types: Sequence[str] | None = None, strategy: RecordStrategy = "auto"
    ) -> SearchResult:
        """The patient and their record: ``Patient/$everything`` when the CapabilityStatement lists it, else the
        Patient plus concurrent ``patient=`` searches per type (``patient_record.PATIENT_COMPARTMENT_TYPES``);
        ``strategy`` forces one or the other."""
        return await fetch_patient_record(self, patient_id, types=types, strategy=strategy)

    # -- writes ------------------------------------------------------------------------------------------------
    async def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction or batch Bundle to the base; `WriteNotAllowedError` unless ``allow_writes``.

        Never retried after it may have reached the server (a replayed transaction could write twice).
        """
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise InvalidRequestError("transaction() takes a Bundle resource")
        if bundle.get("type") not in ("transaction", "batch"):
            raise InvalidRequestError(f"transaction() takes a transaction or batch Bundle, not {bundle.get('type')!r}")
        return await self._session.send("POST", "", body=bundle)
