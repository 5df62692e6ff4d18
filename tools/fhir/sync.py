"""`SyncFhirClient`: the async client behind blocking calls, for the command line and scripts.

It runs one `FhirClient` on a private event loop in a daemon thread, started on ``__enter__`` or first use and
stopped by `close`. Calls from any thread block until the answer (or the error) comes back; errors are the same
`FhirError` types as the async client's.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from .client import FhirClient
from .errors import FhirError
from .patient_record import RecordStrategy
from .resource import Resource, SearchResult
from .search import SearchParams

__all__ = ["SyncFhirClient"]

T = TypeVar("T")


class SyncFhirClient:
    """Blocking twin of `FhirClient`; takes the same constructor arguments. Use ``with SyncFhirClient(...) as f:``."""

    def __init__(self, base_url: str, **options: Any) -> None:
        self._base_url = base_url
        self._options = options
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: FhirClient | None = None
        self._closed = False
        # Build the async client now (on no loop) so configuration errors surface at construction.
        self._client = FhirClient(base_url, **options)

    def __repr__(self) -> str:
        inner = repr(self._client) if self._client else self._base_url
        return f"SyncFhirClient({inner})"

    def __enter__(self) -> Self:
        self._start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise FhirError("this SyncFhirClient is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="fhir-client-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            loop = self._start()
        except FhirError:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        """Close the HTTP client and stop the loop thread; further calls raise `FhirError`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if self._client is not None:
            if loop is not None:
                asyncio.run_coroutine_threadsafe(self._client.aclose(), loop).result()
            else:  # never started: close the unused AsyncClient on a throwaway loop
                asyncio.run(self._client.aclose())
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    @property
    def base_url(self) -> str:
        """The normalised base URL."""
        assert self._client is not None
        return self._client.base_url

    @property
    def round_trips(self) -> int:
        """HTTP requests sent so far (retries included)."""
        assert self._client is not None
        return self._client.round_trips

    @property
    def client(self) -> FhirClient:
        """The async client inside (use it only on this object's loop)."""
        assert self._client is not None
        return self._client

    def capabilities(self) -> dict[str, Any]:
        """See `FhirClient.capabilities`."""
        return self._run(self.client.capabilities())

    def supports_operation(self, resource_type: str, operation: str) -> bool:
        """See `FhirClient.supports_operation`."""
        return self._run(self.client.supports_operation(resource_type, operation))

    def resource_types(self) -> frozenset[str]:
        """See `FhirClient.resource_types`."""
        return self._run(self.client.resource_types())

    def read(self, resource_type: str, resource_id: str) -> Resource:
        """See `FhirClient.read`."""
        return self._run(self.client.read(resource_type, resource_id))

    def vread(self, resource_type: str, resource_id: str, version: str) -> Resource:
        """See `FhirClient.vread`."""
        return self._run(self.client.vread(resource_type, resource_id, version))

    def resolve(self, reference: str) -> Resource:
        """See `FhirClient.resolve`."""
        return self._run(self.client.resolve(reference))

    def get_url(self, url: str) -> dict[str, Any]:
        """See `FhirClient.get_url`."""
        return self._run(self.client.get_url(url))

    def search(
        self,
        resource_type: str,
        params: SearchParams | None = None,
        *,
        max_pages: int | None = None,
        max_resources: int | None = None,
    ) -> SearchResult:
        """See `FhirClient.search`."""
        return self._run(self.client.search(resource_type, params, max_pages=max_pages, max_resources=max_resources))

    def search_url(
        self,
        url: str,
        params: SearchParams | None = None,
        *,
        max_pages: int | None = None,
        max_resources: int | None = None,
    ) -> SearchResult:
        """See `FhirClient.search_url`."""
        return self._run(self.client.search_url(url, params, max_pages=max_pages, max_resources=max_resources))

    def everything(
        self, patient_id: str, *, types: Sequence[str] | None = None, strategy: RecordStrategy = "auto"
    ) -> SearchResult:
        """See `FhirClient.everything`."""
        return self._run(self.client.everything(patient_id, types=types, strategy=strategy))

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """See `FhirClient.transaction`."""
        return self._run(self.client.transaction(bundle))
