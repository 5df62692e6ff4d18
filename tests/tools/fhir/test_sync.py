"""The blocking facade: same calls, run on a private event-loop thread."""

from __future__ import annotations

import threading

import httpx
import pytest

from tools.fhir import SyncFhirClient
from tools.fhir.errors import FhirError, ResourceNotFoundError, WriteNotAllowedError

from . import BASE, FakeFhir, bundle, capability, fhir_response, observation, patient


def test_sync_client_reads_searches_and_closes() -> None:
    fake = FakeFhir()
    fake.on("GET /fhir/metadata", fhir_response(capability(everything=True)))
    fake.on("GET /fhir/Patient/p1", fhir_response(patient()))
    fake.on("GET /fhir/Observation", fhir_response(bundle([observation("o1")], next_url="Observation?page=2")))
    fake.on("GET /fhir/Observation?page=2", fhir_response(bundle([observation("o2")])))
    fake.on("GET /fhir/Patient/p1/$everything", fhir_response(bundle([patient(), observation("o1")])))
    threads_before = threading.active_count()
    with SyncFhirClient(BASE, transport=httpx.MockTransport(fake.handler)) as fhir:
        assert fhir.read("Patient", "p1").id == "p1"
        assert [r.id for r in fhir.search("Observation", {"patient": "p1"}).resources] == ["o1", "o2"]
        assert fhir.supports_operation("Patient", "everything")
        assert len(fhir.everything("p1").resources) == 2
        with pytest.raises(ResourceNotFoundError):
            fhir.read("Patient", "missing")
        with pytest.raises(WriteNotAllowedError):
            fhir.transaction({"resourceType": "Bundle", "type": "transaction"})
        assert fhir.round_trips == len(fake.requests) == 6
        assert "fhir.test" in repr(fhir)
    assert threading.active_count() == threads_before  # the loop thread stopped
    with pytest.raises(FhirError, match="closed"):
        fhir.read("Patient", "p1")


def test_sync_client_starts_on_first_use_without_a_with_block() -> None:
    fake = FakeFhir().on("GET /fhir/Patient/p1", fhir_response(patient()))
    fhir = SyncFhirClient(BASE, transport=httpx.MockTransport(fake.handler))
    try:
        assert fhir.read("Patient", "p1").id == "p1"
    finally:
        fhir.close()
    fhir.close()  # closing twice is harmless
