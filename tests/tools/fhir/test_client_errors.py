"""Retries, backoff and typed errors: 429, 5xx, timeouts, HTML pages, empty bodies, OperationOutcomes."""

from __future__ import annotations

import httpx
import pytest

from tools.fhir import RetryPolicy
from tools.fhir.errors import (
    FhirAuthError,
    FhirStatusError,
    FhirTimeoutError,
    FhirTransportError,
    InvalidRequestError,
    NotFhirResponseError,
    OperationOutcomeError,
    ResourceGoneError,
    ResourceNotFoundError,
)

from . import BASE, FakeFhir, SleepRecorder, fhir_response, outcome, patient

SLOW = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=30.0)


async def test_429_waits_for_retry_after_then_succeeds() -> None:
    fake = FakeFhir().on(
        "GET /fhir/Patient/p1",
        fhir_response(outcome("throttled", "slow down"), status=429, headers={"retry-after": "7"}),
        fhir_response(patient()),
    )
    sleep = SleepRecorder()
    async with fake.client(retry=SLOW, sleep=sleep) as fhir:
        resource = await fhir.read("Patient", "p1")
        assert fhir.round_trips == 2
    assert resource.id == "p1" and resource.valid
    assert sleep.delays == [7.0]


async def test_retry_after_is_capped_by_max_delay() -> None:
    fake = FakeFhir().on(
        "GET /fhir/Patient/p1",
        httpx.Response(429, headers={"retry-after": "3600"}),
        fhir_response(patient()),
    )
    sleep = SleepRecorder()
    async with fake.client(retry=RetryPolicy(max_delay=2.0), sleep=sleep) as fhir:
        await fhir.read("Patient", "p1")
    assert sleep.delays == [2.0]


async def test_503_then_success_backs_off_with_jitter() -> None:
    fake = FakeFhir().on("GET /fhir/Patient/p1", httpx.Response(503), httpx.Response(503), fhir_response(patient()))
    sleep = SleepRecorder()
    async with fake.client(retry=SLOW, sleep=sleep) as fhir:
        assert (await fhir.read("Patient", "p1")).id == "p1"
        assert fhir.round_trips == 3
    assert len(sleep.delays) == 2
    assert 0.0 <= sleep.delays[0] <= 0.5 and 0.0 <= sleep.delays[1] <= 1.0


async def test_persistent_500_gives_a_status_error_after_all_attempts() -> None:
    fake = FakeFhir().on("GET /fhir/Patient/p1", fhir_response(outcome("exception", "db down"), status=500))
    async with fake.client(retry=SLOW, sleep=SleepRecorder()) as fhir:
        with pytest.raises(OperationOutcomeError) as info:
            await fhir.read("Patient", "p1")
    assert info.value.attempts == 4 and info.value.status == 500
    assert len(fake.requests) == 4


async def test_timeouts_are_retried_then_raise_a_timeout_error() -> None:
    fake = FakeFhir().on("GET /fhir/Patient/p1", httpx.ReadTimeout("read timed out"))
    sleep = SleepRecorder()
    async with fake.client(retry=SLOW, sleep=sleep) as fhir:
        with pytest.raises(FhirTimeoutError) as info:
            await fhir.read("Patient", "p1")
    assert len(fake.requests) == 4 and len(sleep.delays) == 3
    assert info.value.attempts == 4
    assert f"GET {BASE}/Patient/p1 timed out after 4 attempts" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


async def test_a_connection_error_then_success() -> None:
    fake = FakeFhir().on("GET /fhir/Patient/p1", httpx.ConnectError("refused"), fhir_response(patient()))
    async with fake.client() as fhir:
        assert (await fhir.read("Patient", "p1")).id == "p1"
    fake = FakeFhir().on("GET /fhir/Patient/p1", httpx.ConnectError("refused"))
    async with fake.client() as fhir:
        with pytest.raises(FhirTransportError) as info:
            await fhir.read("Patient", "p1")
    assert not isinstance(info.value, FhirTimeoutError)


async def test_an_html_error_page_is_not_fhir() -> None:
    page = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
    fake = FakeFhir().on("GET /fhir/Patient/p1", httpx.Response(502, text=page, headers={"content-type": "text/html"}))
    async with fake.client() as fhir:
        with pytest.raises(NotFhirResponseError) as info:
            await fhir.read("Patient", "p1")
    message = str(info.value)
    assert f"GET {BASE}/Patient/p1" in message and "text/html" in message and "HTML" in message
    assert "502 Bad Gateway" in info.value.snippet
    assert (info.value.status, info.value.content_type) == (502, "text/html")


async def test_an_html_login_page_with_200_is_not_fhir() -> None:
    fake = FakeFhir().on(
        "GET /fhir/Patient/p1",
        httpx.Response(200, text="<!doctype html><title>Sign in</title>", headers={"content-type": "text/html"}),
    )
    async with fake.client() as fhir:
        with pytest.raises(NotFhirResponseError, match="Sign in"):
            await fhir.read("Patient", "p1")


@pytest.mark.parametrize(
    ("response", "what"),
    [
        (httpx.Response(200, content=b"", headers={"content-type": "application/fhir+json"}), "empty body"),
        (httpx.Response(200, content=b"{not json", headers={"content-type": "application/fhir+json"}), "invalid JSON"),
        (httpx.Response(200, json={"hello": "world"}), "no resourceType"),
        (httpx.Response(200, json=[1, 2]), "no resourceType"),
        (httpx.Response(200, text='{"resourceType": "Patient"}', headers={"content-type": "text/plain"}), "text/plain"),
    ],
)
async def test_non_fhir_bodies(response: httpx.Response, what: str) -> None:
    fake = FakeFhir().on("GET /fhir/Patient/p1", response)
    async with fake.client() as fhir:
        with pytest.raises(NotFhirResponseError, match=what) as info:
            await fhir.read("Patient", "p1")
    assert f"{BASE}/Patient/p1" in str(info.value)


async def test_json_content_type_variants_are_accepted() -> None:
    for content_type in ("application/json", "application/fhir+json; fhirVersion=4.0", "application/json+fhir"):
        fake = FakeFhir().on(
            "GET /fhir/Patient/p1", httpx.Response(200, json=patient(), headers={"content-type": content_type})
        )
        async with fake.client() as fhir:
            assert (await fhir.read("Patient", "p1")).id == "p1"


async def test_an_operation_outcome_becomes_a_typed_error_with_issues() -> None:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": "Unknown search parameter 'foo'",
                "expression": ["Observation.foo"],
            },
            {"severity": "warning", "code": "informational", "details": {"text": "see docs"}},
        ],
    }
    fake = FakeFhir().on("GET /fhir/Observation", fhir_response(body, status=400))
    async with fake.client() as fhir:
        with pytest.raises(OperationOutcomeError) as info:
            await fhir.search("Observation", {"foo": "1"})
    error = info.value
    assert error.status == 400
    assert [(i.severity, i.code) for i in error.issues] == [("error", "invalid"), ("warning", "informational")]
    assert error.issues[0].diagnostics == "Unknown search parameter 'foo'"
    assert error.issues[0].expression == ("Observation.foo",)
    assert error.issues[1].details == "see docs"
    assert "Unknown search parameter 'foo'" in str(error) and f"GET {BASE}/Observation?foo=1" in str(error)
    assert len(fake.requests) == 1  # a 400 is not retried


async def test_an_error_outcome_with_status_200_is_an_error() -> None:
    fake = FakeFhir().on("GET /fhir/Patient/p1", fhir_response(outcome("exception", "backend failed")))
    async with fake.client() as fhir:
        with pytest.raises(OperationOutcomeError, match="backend failed"):
            await fhir.read("Patient", "p1")


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, FhirAuthError), (403, FhirAuthError), (404, ResourceNotFoundError), (410, ResourceGoneError)],
)
async def test_status_codes_map_to_typed_errors(status: int, error: type[FhirStatusError]) -> None:
    fake = FakeFhir().on("GET /fhir/Patient/p1", fhir_response(outcome("not-found", "gone or hidden"), status=status))
    async with fake.client() as fhir:
        with pytest.raises(error) as info:
            await fhir.read("Patient", "p1")
    assert info.value.status == status
    assert info.value.issues[0].diagnostics == "gone or hidden"
    assert f"GET {BASE}/Patient/p1 failed with HTTP {status}" in str(info.value)
    assert len(fake.requests) == 1


async def test_auth_error_with_an_html_body_is_still_an_auth_error() -> None:
    fake = FakeFhir().on(
        "GET /fhir/Patient/p1", httpx.Response(401, text="<html>login</html>", headers={"content-type": "text/html"})
    )
    async with fake.client() as fhir:
        with pytest.raises(FhirAuthError):
            await fhir.read("Patient", "p1")


@pytest.mark.parametrize("bad_id", ["../admin", "p1/_history/1", "p 1", "", ".", "x" * 65, "p1?x=1"])
async def test_malformed_ids_never_reach_the_server(bad_id: str) -> None:
    fake = FakeFhir()
    async with fake.client() as fhir:
        with pytest.raises(InvalidRequestError):
            await fhir.read("Patient", bad_id)
        with pytest.raises(InvalidRequestError):
            await fhir.read("patient/../x", "p1")
    assert fake.requests == []


async def test_error_messages_redact_secret_query_values() -> None:
    fake = FakeFhir().on("GET /fhir/Observation", fhir_response(outcome("invalid", "bad"), status=400))
    async with fake.client() as fhir:
        with pytest.raises(OperationOutcomeError) as info:
            await fhir.search("Observation", {"access_token": "tok-123456", "code": "x9x9x9", "patient": "p1"})
    text = str(info.value)
    assert "tok-123456" not in text and "x9x9x9" not in text and "patient=p1" in text
