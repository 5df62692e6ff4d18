"""Validation at the boundary: invalid or unknown resources are kept, flagged and logged, never dropped."""

from __future__ import annotations

import logging

import pytest

from tools.fhir.validation import to_resource, validation_problem

from . import FakeFhir, bundle, fhir_response, observation, patient

BROKEN = {"resourceType": "Observation", "id": "bad1", "status": "final"}  # `code` is required


async def test_an_invalid_resource_is_kept_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeFhir().on("GET /fhir/Observation", fhir_response(bundle([observation("ok1"), BROKEN])))
    with caplog.at_level(logging.WARNING, logger="tools.fhir"):
        async with fake.client() as fhir:
            result = await fhir.search("Observation")
    assert [r.id for r in result.resources] == ["ok1", "bad1"]
    good, bad = result.resources
    assert good.valid and good.problem is None
    assert not bad.valid and bad.raw == BROKEN
    assert bad.problem is not None and bad.problem.startswith("code")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("Observation/bad1" in w and "code" in w for w in warnings)
    assert any("Observation/bad1" in w for w in result.warnings)


def test_an_unknown_resource_type_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    raw = {"resourceType": "Spaceship", "id": "s1"}
    with caplog.at_level(logging.WARNING, logger="tools.fhir"):
        resource = to_resource(raw)
    assert (resource.resource_type, resource.valid, resource.raw) == ("Spaceship", False, raw)
    assert "unknown resourceType" in (resource.problem or "")
    assert any("Spaceship/s1" in r.getMessage() for r in caplog.records)


def test_r4_data_that_r5_would_reject_is_valid() -> None:
    # R4's MedicationRequest.medicationCodeableConcept does not exist in R5 (it became `medication`).
    raw = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "metformin 500 mg"},
        "subject": {"reference": "Patient/p1"},
    }
    assert validation_problem(raw) is None


def test_validate_false_skips_validation(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tools.fhir"):
        resource = to_resource(dict(BROKEN), validate=False)
    assert resource.valid and resource.problem is None
    assert caplog.records == []


def test_identity_fields() -> None:
    raw = {**patient("p9"), "meta": {"versionId": "3"}}
    resource = to_resource(raw)
    assert (resource.reference, resource.versioned_reference) == ("Patient/p9", "Patient/p9/_history/3")
    assert to_resource(patient("p8")).versioned_reference == "Patient/p8"
    assert "name" not in repr(resource)  # raw JSON (possibly PHI) stays out of the repr


def test_repeated_validation_uses_the_cache() -> None:
    raw = observation("cached")
    assert validation_problem(raw) is None
    assert validation_problem(dict(raw)) is None
    changed = {**raw, "status": 12}
    assert validation_problem(changed) is not None  # different content, new verdict
