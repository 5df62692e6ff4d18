"""A patient's record: Patient/$everything when the server offers it, per-type searches when it does not."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tools.fhir import PATIENT_COMPARTMENT_TYPES, ClientLimits, FhirClient
from tools.fhir.errors import FhirStatusError, ResourceNotFoundError

from . import BASE, FakeFhir, bundle, capability, fhir_response, observation, outcome, patient

CONDITION = {
    "resourceType": "Condition",
    "id": "c1",
    "subject": {"reference": "Patient/p1"},
    "code": {"text": "Type 2 diabetes"},
}


def searches(fake: FakeFhir) -> dict[str, str]:
    """Resource type -> the query of the first search the client sent for it."""
    sent: dict[str, str] = {}
    for r in fake.requests:
        if r.url.path.count("/") == 2 and r.url.path != "/fhir/metadata":
            sent.setdefault(r.url.path.rsplit("/", 1)[-1], r.url.query.decode())
    return sent


async def test_everything_is_used_when_the_capability_statement_lists_it() -> None:
    fake = FakeFhir()
    fake.on("GET /fhir/metadata", fhir_response(capability(everything=True)))
    fake.on(
        "GET /fhir/Patient/p1/$everything",
        fhir_response(bundle([patient(), CONDITION], next_url=f"{BASE}/Patient/p1/$everything?page=2")),
    )
    fake.on("GET /fhir/Patient/p1/$everything?page=2", fhir_response(bundle([observation("o1"), CONDITION])))
    async with fake.client() as fhir:
        result = await fhir.everything("p1")
        assert await fhir.supports_operation("Patient", "$everything")
        assert fhir.round_trips == 3  # metadata fetched once and cached
    assert fake.paths == ["/fhir/metadata", "/fhir/Patient/p1/$everything", "/fhir/Patient/p1/$everything"]
    assert fake.requests[1].url.params["_count"] == "200"
    assert [r.reference for r in result.resources] == ["Patient/p1", "Condition/c1", "Observation/o1"]  # deduped
    assert result.pages == 2 and not result.truncated


async def test_everything_with_types_asks_for_them_and_filters() -> None:
    fake = FakeFhir()
    fake.on("GET /fhir/metadata", fhir_response(capability(everything=True)))
    fake.on("GET /fhir/Patient/p1/$everything", fhir_response(bundle([patient(), CONDITION, observation("o1")])))
    async with fake.client() as fhir:
        result = await fhir.everything("p1", types=["Condition"])
    assert fake.requests[1].url.params["_type"] == "Condition"
    assert [r.reference for r in result.resources] == ["Patient/p1", "Condition/c1"]


def fallback_server(*, everything: bool) -> FakeFhir:
    fake = FakeFhir()
    fake.on("GET /fhir/metadata", fhir_response(capability(everything=everything)))
    fake.on("GET /fhir/Patient/p1", fhir_response(patient()))
    fake.on("GET /fhir/Condition", fhir_response(bundle([CONDITION])))
    fake.on(
        "GET /fhir/Observation",
        fhir_response(bundle([observation("o1")], next_url=f"{BASE}/Observation?page=2")),
    )
    fake.on("GET /fhir/Observation?page=2", fhir_response(bundle([observation("o2")])))
    for resource_type in ("MedicationRequest", "AllergyIntolerance", "Encounter"):
        fake.on(f"GET /fhir/{resource_type}", fhir_response(bundle([])))
    return fake


async def test_fallback_to_per_type_searches_when_everything_is_not_listed() -> None:
    fake = fallback_server(everything=False)
    async with fake.client() as fhir:
        result = await fhir.everything("p1")
    assert not any("$everything" in p for p in fake.paths)
    sent = searches(fake)
    # only types the CapabilityStatement lists are searched, each with patient= and the page size
    assert set(sent) == {"Condition", "Observation", "MedicationRequest", "AllergyIntolerance", "Encounter"}
    assert all(query.startswith("patient=p1&_count=200") for query in sent.values())
    assert "/fhir/Patient/p1" in fake.paths
    assert [r.reference for r in result.resources] == [
        "Patient/p1",
        "Condition/c1",
        "Observation/o1",
        "Observation/o2",
    ]
    assert any("not searched" in w and "Procedure" in w for w in result.warnings)


async def test_fallback_when_everything_is_listed_but_not_implemented() -> None:
    fake = fallback_server(everything=True)
    fake.on("GET /fhir/Patient/p1/$everything", fhir_response(outcome("not-supported", "no"), status=501))
    async with fake.client() as fhir:
        result = await fhir.everything("p1")
    assert "/fhir/Patient/p1/$everything" in fake.paths and "/fhir/Condition" in fake.paths
    assert {r.reference for r in result.resources} >= {"Patient/p1", "Condition/c1", "Observation/o2"}
    assert "$everything failed" in result.warnings[0]


async def test_fallback_without_a_capability_statement_searches_the_default_types() -> None:
    fake = fallback_server(everything=False)
    fake.on("GET /fhir/metadata", httpx.Response(404, text="<html>no</html>", headers={"content-type": "text/html"}))
    async with fake.client() as fhir:
        result = await fhir.everything("p1")
    assert set(searches(fake)) == set(PATIENT_COMPARTMENT_TYPES)
    # the unrouted types answer 404: skipped with a warning, not fatal
    assert any(w.startswith("Procedure: search failed") for w in result.warnings)
    assert result.resources[0].reference == "Patient/p1"


async def test_a_missing_patient_is_an_error_not_an_empty_record() -> None:
    fake = FakeFhir().on("GET /fhir/metadata", fhir_response(capability(everything=False)))
    async with fake.client() as fhir:
        with pytest.raises(ResourceNotFoundError):
            await fhir.everything("nobody")


async def test_a_server_failure_in_one_type_is_raised() -> None:
    fake = fallback_server(everything=False)
    fake.on("GET /fhir/Encounter", fhir_response(outcome("exception", "boom"), status=500))
    async with fake.client() as fhir:
        with pytest.raises(FhirStatusError, match="boom"):
            await fhir.everything("p1")


async def test_concurrency_is_bounded_by_the_limit() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        if request.url.path == "/fhir/metadata":
            return fhir_response({"resourceType": "CapabilityStatement", "status": "active"})
        if request.url.path == "/fhir/Patient/p1":
            return fhir_response(patient())
        return fhir_response(bundle([]))

    async with FhirClient(BASE, transport=httpx.MockTransport(handler), limits=ClientLimits(max_concurrency=3)) as fhir:
        result = await fhir.everything("p1")
        assert fhir.round_trips == 2 + len(PATIENT_COMPARTMENT_TYPES)
    assert peak == 3
    assert result.resources[0].id == "p1"


async def test_fallback_drops_other_patients_resources_when_the_server_ignores_the_patient_parameter() -> None:
    # sekmet 0.1.1 answers FamilyMemberHistory?patient=X with every patient's resources: none may leak in.
    fake = fallback_server(everything=False)
    fake.on("GET /fhir/Condition", fhir_response(bundle([CONDITION, {**CONDITION, "id": "c2",
                                                                     "subject": {"reference": "Patient/p2"}}])))
    async with fake.client() as fhir:
        result = await fhir.everything("p1")
    assert [r.reference for r in result.resources if r.resource_type == "Condition"] == ["Condition/c1"]
    assert any("1 resources not linked to Patient/p1 dropped" in w for w in result.warnings)


async def test_strategy_forces_searches_or_everything_whatever_the_capability_statement_says() -> None:
    fake = fallback_server(everything=True)
    async with fake.client() as fhir:
        result = await fhir.everything("p1", strategy="searches")
    assert not any("$everything" in p for p in fake.paths)
    assert "Condition/c1" in [r.reference for r in result.resources]

    fake = FakeFhir()
    fake.on("GET /fhir/metadata", fhir_response(capability(everything=False)))
    fake.on("GET /fhir/Patient/p1/$everything", fhir_response(bundle([patient(), CONDITION])))
    async with fake.client() as fhir:
        result = await fhir.everything("p1", strategy="everything")
    assert [r.reference for r in result.resources] == ["Patient/p1", "Condition/c1"]
