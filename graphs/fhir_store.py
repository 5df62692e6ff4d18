"""``FhirRecordStore``: the record question-answering graph's ``RecordStore`` over a live FHIR server.

Every request goes through ``tools.fhir.FhirClient``, so the client's guarantees hold whatever the graph or a model
asks for: URLs stay under the configured base, nothing is written, invalid resources are kept with a warning.
A patient's whole record is fetched once per store (``$everything`` or per-type searches) and reused: the
consultation's intake summary, the manifest and the per-type views all read the same copy. Client errors are
translated into the store's error tree (``graphs.record_store``) so the graph records them instead of crashing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from graphs.record_store import RecordStoreError, SearchParams, UnsupportedSearchError
from tools.fhir import FhirClient, SearchResult
from tools.fhir.errors import FhirError, InvalidRequestError, ResourceGoneError, ResourceNotFoundError

__all__ = ["FhirRecordStore"]

logger = logging.getLogger(__name__)


class FhirRecordStore:
    """A read-only view of patients' records on one FHIR server, for the graphs."""

    def __init__(self, client: FhirClient) -> None:
        self.client = client
        self._records: dict[str, list[dict[str, Any]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def patient_resources(
        self, patient_id: str, types: Sequence[str] | None = None, *, elements: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        # ``elements`` would only trim what the cached full record already holds; the whole resources are kept.
        record = await self._record(patient_id)
        if types is None:
            return list(record)
        wanted = set(types) | {"Patient"}
        return [r for r in record if r.get("resourceType") in wanted]

    async def _record(self, patient_id: str) -> list[dict[str, Any]]:
        lock = self._locks.setdefault(patient_id, asyncio.Lock())
        async with lock:  # concurrent first requests for one patient must not fetch the record twice
            if patient_id not in self._records:
                try:
                    with _translated():
                        result = await self.client.everything(patient_id)
                except _Absent as exc:
                    raise RecordStoreError(str(exc)) from exc
                _log_warnings(result)
                self._records[patient_id] = result.raw()
            return self._records[patient_id]

    async def search(self, resource_type: str, params: SearchParams) -> list[dict[str, Any]]:
        count = params.get("_count")
        cap = int(count) if isinstance(count, str) and count.isdigit() and int(count) > 0 else None
        with _translated():
            result = await self.client.search(resource_type, params, max_resources=cap)
        _log_warnings(result)
        return [r.raw for r in result.resources]

    async def resolve(self, reference: str) -> dict[str, Any] | None:
        try:
            with _translated():
                return (await self.client.resolve(reference)).raw
        except _Absent:
            return None


class _Absent(Exception):
    """A reference to a resource the server does not hold (404) or no longer holds (410)."""


@contextmanager
def _translated() -> Iterator[None]:
    """Client errors as the store's errors (``graphs.record_store``); an absent resource as ``_Absent``."""
    try:
        yield
    except (ResourceNotFoundError, ResourceGoneError) as exc:
        raise _Absent(str(exc)) from exc
    except InvalidRequestError as exc:
        raise UnsupportedSearchError(str(exc)) from exc
    except FhirError as exc:
        raise RecordStoreError(str(exc)) from exc


def _log_warnings(result: SearchResult) -> None:
    for warning in result.warnings:
        if not warning.startswith("stopped at max_resources"):  # the `_count` the graph asked for, not news
            logger.warning("FHIR search: %s", warning)
