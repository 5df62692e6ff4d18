"""Searches and paging against a scripted server: next links, bounds, cycles, links that leave the base."""

from __future__ import annotations

import logging

import httpx
import pytest

from tools.fhir import ClientLimits
from tools.fhir.errors import UrlOutsideBaseError

from . import BASE, FakeFhir, bundle, fhir_response, observation, patient


def three_pages() -> FakeFhir:
    fake = FakeFhir()
    fake.on(
        "GET /fhir/Observation?patient=p1&_count=2",
        fhir_response(bundle([observation("o1"), observation("o2")], next_url=f"{BASE}?page=2", total=5)),
    )
    fake.on(
        "GET /fhir?page=2",
        fhir_response(bundle([observation("o3"), observation("o4")], next_url="Observation?page=3")),
    )
    fake.on("GET /fhir/Observation?page=3", fhir_response(bundle([observation("o5")], include=[patient()])))
    return fake


async def test_search_follows_three_pages() -> None:
    fake = three_pages()
    async with fake.client() as fhir:
        result = await fhir.search("Observation", {"patient": "p1", "_count": 2})
        assert fhir.round_trips == 3
    assert [r.id for r in result.resources] == ["o1", "o2", "o3", "o4", "o5"]
    assert [r.reference for r in result.included] == ["Patient/p1"]
    assert result.included[0].search_mode == "include"
    assert (result.pages, result.total, result.truncated, result.warnings) == (3, 5, False, [])
    # the relative next link "Observation?page=3" was resolved under the base
    assert fake.urls[-1] == f"{BASE}/Observation?page=3"
    assert all(r.headers["accept"] == "application/fhir+json" for r in fake.requests)


async def test_repeated_parameters_reach_the_server() -> None:
    fake = FakeFhir().on("GET /fhir/Observation", fhir_response(bundle([])))
    async with fake.client() as fhir:
        await fhir.search("Observation", [("date", "ge2024-01-01"), ("date", "le2024-12-31")])
    assert fake.requests[0].url.params.get_list("date") == ["ge2024-01-01", "le2024-12-31"]


async def test_max_pages_stops_and_marks_truncated() -> None:
    fake = three_pages()
    async with fake.client() as fhir:
        result = await fhir.search("Observation", {"patient": "p1", "_count": 2}, max_pages=2)
    assert [r.id for r in result.resources] == ["o1", "o2", "o3", "o4"]
    assert result.truncated and "max_pages=2" in result.warnings[0]
    assert len(fake.requests) == 2


async def test_max_resources_cuts_and_marks_truncated() -> None:
    fake = three_pages()
    async with fake.client(limits=ClientLimits(max_resources=3)) as fhir:
        result = await fhir.search("Observation", {"patient": "p1", "_count": 2})
    assert [r.id for r in result.resources] == ["o1", "o2", "o3"]
    assert result.truncated and "max_resources=3" in result.warnings[0]
    assert len(fake.requests) == 2


async def test_a_cycle_in_next_links_stops_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeFhir()
    fake.on("GET /fhir/Observation", fhir_response(bundle([observation("o1")], next_url=f"{BASE}/Observation?p=2")))
    fake.on("GET /fhir/Observation?p=2", fhir_response(bundle([observation("o2")], next_url=f"{BASE}/Observation?p=3")))
    fake.on("GET /fhir/Observation?p=3", fhir_response(bundle([observation("o3")], next_url=f"{BASE}/Observation?p=2")))
    with caplog.at_level(logging.WARNING, logger="tools.fhir"):
        async with fake.client() as fhir:
            result = await fhir.search("Observation")
    assert [r.id for r in result.resources] == ["o1", "o2", "o3"]
    assert result.truncated
    assert len(fake.requests) == 3  # page 2 was not fetched twice
    assert any("cycle" in w for w in result.warnings)
    assert any("cycle" in r.getMessage() for r in caplog.records)


async def test_a_next_link_back_to_the_first_page_is_a_cycle() -> None:
    fake = FakeFhir()
    fake.on(
        "GET /fhir/Observation",
        fhir_response(bundle([observation("o1")], next_url=f"{BASE}/Observation?code=a%3Ab")),
    )
    async with fake.client() as fhir:
        result = await fhir.search("Observation", {"code": "a:b"})
    assert result.truncated and len(fake.requests) == 1


@pytest.mark.parametrize(
    "evil_next",
    [
        "http://evil.test/fhir/Observation?page=2",
        "http://fhir.test/fhir-admin/Observation?page=2",
        "http://fhir.test/fhir/../admin?page=2",
        "http://fhir.test/fhir/%2e%2e/admin",
        "http://fhir.test@evil.test/fhir/Observation",
        "https://fhir.test/fhir/Observation?page=2",
    ],
)
async def test_a_next_link_outside_the_base_is_refused_and_never_fetched(evil_next: str) -> None:
    fake = FakeFhir()
    fake.on("GET /fhir/Observation", fhir_response(bundle([observation("o1")], next_url=evil_next)))
    async with fake.client() as fhir:
        with pytest.raises(UrlOutsideBaseError, match="only URLs under http://fhir.test/fhir"):
            await fhir.search("Observation")
    assert len(fake.requests) == 1
    assert {r.url.host for r in fake.requests} == {"fhir.test"}
    assert all(r.url.path.startswith("/fhir/") for r in fake.requests)


async def test_a_redirect_outside_the_base_is_not_followed() -> None:
    fake = FakeFhir().on("GET /fhir/Patient/p1", httpx.Response(302, headers={"location": "http://evil.test/steal"}))
    async with fake.client() as fhir:
        with pytest.raises(UrlOutsideBaseError):
            await fhir.read("Patient", "p1")
    assert fake.paths == ["/fhir/Patient/p1"]


async def test_a_redirect_under_the_base_is_followed() -> None:
    fake = FakeFhir()
    fake.on("GET /fhir/Patient/old", httpx.Response(301, headers={"location": "/fhir/Patient/p1"}))
    fake.on("GET /fhir/Patient/p1", fhir_response(patient()))
    async with fake.client() as fhir:
        assert (await fhir.read("Patient", "old")).id == "p1"
        assert fhir.round_trips == 2


async def test_search_url_and_get_url_for_model_written_urls() -> None:
    fake = three_pages()
    async with fake.client() as fhir:
        result = await fhir.search_url("Observation?patient=p1&_count=2")
        first_page = await fhir.get_url(f"{BASE}/Observation?patient=p1&_count=2")
    assert len(result.resources) == 5
    assert first_page["resourceType"] == "Bundle" and len(first_page["entry"]) == 2


async def test_server_warnings_in_a_bundle_are_reported() -> None:
    page = bundle([observation("o1")])
    page["entry"].append(
        {
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "warning", "code": "processing", "diagnostics": "unknown parameter foo"}],
            },
            "search": {"mode": "outcome"},
        }
    )
    fake = FakeFhir().on("GET /fhir/Observation", fhir_response(page))
    async with fake.client() as fhir:
        result = await fhir.search("Observation", {"foo": "1"})
    assert [r.id for r in result.resources] == ["o1"]
    assert result.warnings == ["warning/processing: unknown parameter foo"]
