"""The LangChain tools over the FHIR client: compact cited text, fixable errors as text, the rest raised."""

from __future__ import annotations

import httpx
import pytest

from tests.tools.fhir import BASE, FakeFhir, bundle, capability, fhir_response, observation, patient
from tools.fhir.errors import FhirAuthError, FhirTransportError
from tools.fhir_tools import fhir_tools, render_fhir_json


def by_name(client) -> dict:
    return {tool.name: tool for tool in fhir_tools(client)}


async def test_fhir_get_returns_cited_lines_and_says_when_there_are_more_pages() -> None:
    fake = FakeFhir().on("GET /fhir/Observation", fhir_response(
        bundle([observation("o1"), observation("o2")], next_url=f"{BASE}/Observation?page=2")))
    async with fake.client() as client:
        text = await by_name(client)["fhir_get"].ainvoke({"url": "Observation?patient=p1&code=4548-4"})
    assert text.splitlines()[0].startswith("[Observation/o1]") and "[Observation/o2]" in text
    assert "more pages" in text
    assert fake.urls == [f"{BASE}/Observation?patient=p1&code=4548-4"]


async def test_a_url_off_the_server_or_a_write_is_refused_as_text_and_never_sent() -> None:
    fake = FakeFhir()
    async with fake.client() as client:
        tool = by_name(client)["fhir_get"]
        off = await tool.ainvoke({"url": "http://169.254.169.254/latest/meta-data"})
        climb = await tool.ainvoke({"url": f"{BASE}/../admin"})
    assert off.startswith("ERROR:") and climb.startswith("ERROR:")
    assert fake.requests == []


async def test_not_found_is_text_but_refused_credentials_and_a_dead_server_are_raised() -> None:
    fake = FakeFhir().on("GET /fhir/Observation", fhir_response({"resourceType": "OperationOutcome"}, status=401))
    async with fake.client() as client:
        tools = by_name(client)
        assert (await tools["fhir_get"].ainvoke({"url": "Patient/nobody"})).startswith("ERROR:")
        with pytest.raises(FhirAuthError):
            await tools["fhir_get"].ainvoke({"url": "Observation?patient=p1"})
    dead = FakeFhir().on("GET /fhir/Patient/p1", httpx.ConnectError("refused"))
    async with dead.client() as client:
        with pytest.raises(FhirTransportError):
            await by_name(client)["fhir_get"].ainvoke({"url": "Patient/p1"})


async def test_patient_summary_is_the_cited_snapshot() -> None:
    fake = FakeFhir()
    fake.on("GET /fhir/metadata", fhir_response(capability(everything=True)))
    fake.on("GET /fhir/Patient/p1/$everything", fhir_response(bundle([patient(), observation("o1")])))
    async with fake.client() as client:
        text = await by_name(client)["patient_summary"].ainvoke({"patient_id": "p1"})
        missing = await by_name(client)["patient_summary"].ainvoke({"patient_id": "../x"})
    assert "[Patient/p1]" in text
    assert missing.startswith("ERROR:")


def test_rendering_caps_lines_and_skips_what_cannot_be_cited() -> None:
    body = bundle([observation(f"o{i}") for i in range(5)] + [{"resourceType": "Observation"}])
    text = render_fhir_json(body, max_lines=3)
    assert text.count("[Observation/") == 3 and "(2 more resources not shown)" in text
    assert render_fhir_json(bundle([])) == "No resources found."
