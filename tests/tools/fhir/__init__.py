"""Test doubles for the FHIR client tests: a scripted FHIR server behind `httpx.MockTransport`.

Kept here (not in a conftest) so the FHIR test modules can import the same fake without fixtures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from tools.fhir import ClientLimits, FhirClient, RetryPolicy

BASE = "http://fhir.test/fhir"
FHIR_JSON = "application/fhir+json"

Responder = httpx.Response | Callable[[httpx.Request], httpx.Response] | BaseException


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    """A FHIR JSON answer."""
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": FHIR_JSON, **(headers or {})}
    )


def bundle(
    resources: Iterable[dict[str, Any]],
    *,
    next_url: str | None = None,
    total: int | None = None,
    include: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A searchset Bundle with optional `next` link and included entries."""
    entries = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    entries += [{"resource": r, "search": {"mode": "include"}} for r in include]
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    if next_url:
        out["link"] = [{"relation": "self", "url": "ignored"}, {"relation": "next", "url": next_url}]
    if total is not None:
        out["total"] = total
    return out


def outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def patient(pid: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "Doe", "given": ["Jane"]}]}


def observation(oid: str, pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"text": "Hemoglobin A1c"},
        "subject": {"reference": f"Patient/{pid}"},
    }


def capability(*, everything: bool) -> dict[str, Any]:
    patient_entry: dict[str, Any] = {"type": "Patient"}
    if everything:
        patient_entry["operation"] = [
            {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}
        ]
    types = ["Condition", "Observation", "MedicationRequest", "AllergyIntolerance", "Encounter"]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{"mode": "server", "resource": [patient_entry, *({"type": t} for t in types)]}],
    }


class FakeFhir:
    """Routes ``METHOD path[?query]`` to scripted answers and records every request it receives.

    A route holds a list of answers used in turn (the last one repeats); an answer is a response, a callable
    taking the request, or an exception to raise (a transport failure). Unrouted requests get a 404 outcome.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[str, list[Responder]] = {}

    def on(self, route: str, *answers: Responder) -> FakeFhir:
        """``fake.on("GET /fhir/Patient/1", fhir_response(...))``; the query, when given, must match exactly."""
        self.routes[route] = list(answers)
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        query = request.url.query.decode()
        answers = self.routes.get(f"{request.method} {path}?{query}") if query else None
        if answers is None:
            answers = self.routes.get(f"{request.method} {path}")
        if not answers:
            return fhir_response(outcome("not-found", f"no route for {path}"), status=404)
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer(request) if callable(answer) else answer

    @property
    def urls(self) -> list[str]:
        return [str(r.url) for r in self.requests]

    @property
    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

    def client(self, **options: Any) -> FhirClient:
        """A FhirClient on this fake, with instant retries unless told otherwise."""
        options.setdefault("retry", RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0))
        options.setdefault("limits", ClientLimits())
        return FhirClient(BASE, transport=httpx.MockTransport(self.handler), **options)


class SleepRecorder:
    """An injectable sleep that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
