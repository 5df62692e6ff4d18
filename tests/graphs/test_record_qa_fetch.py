"""Pure helpers of the record graph: search parameters from a plan, widening, references, the as-of manifest."""

from __future__ import annotations

from datetime import date

from agents.navigator import FetchPlan, PlannedFetch, resolve_window
from graphs.record_fetch import (
    MANIFEST_ELEMENTS,
    as_of,
    catalog_from,
    fetch_requests,
    focus_manifest,
    references_to_follow,
    widening_for,
)
from tests.navigator.small_record import small_record
from tools.records import build_manifest

NOW = date(2024, 6, 1)


def plan(*fetches: PlannedFetch) -> FetchPlan:
    return FetchPlan(fetches=list(fetches))


def test_parameters_per_type() -> None:
    window = resolve_window("since 2021", NOW)
    requests = fetch_requests(
        plan(PlannedFetch(resource_type="Condition", codes=["1", "2"]), PlannedFetch(resource_type="Immunization"),
             PlannedFetch(resource_type="Patient")),
        "p1", window, max_per_type=20,
    )  # fmt: skip
    assert [(r.resource_type, r.params) for r in requests] == [
        ("Condition", {"patient": "p1", "onset-date": ["ge2021-01-01", "le2024-06-01"], "_sort": "-onset-date",
                       "code": "1,2", "_count": "20"}),
        ("Immunization", {"patient": "p1", "date": ["ge2021-01-01", "le2024-06-01"], "_sort": "-date",
                          "_count": "20"}),
        ("Patient", {"_id": "p1", "_count": "20"}),
    ]  # fmt: skip


def test_latest_splits_codes_and_widening_drops_them_then_the_window() -> None:
    window = resolve_window("latest labs in 2023", NOW)
    the_plan = plan(PlannedFetch(resource_type="Observation", codes=["a", "b"]))
    assert [r.params["code"] for r in fetch_requests(the_plan, "p1", window)] == ["a", "b"]
    (wide,) = fetch_requests(the_plan, "p1", window, widening="codes dropped")
    assert "code" not in wide.params and wide.params["date"] == ["ge2023-01-01", "le2023-12-31"]
    (wider,) = fetch_requests(the_plan, "p1", window, widening="window dropped")
    assert "date" not in wider.params


def test_widening_for() -> None:
    bounded = resolve_window("since 2021", NOW)
    unbounded = resolve_window("all labs", NOW)
    coded = plan(PlannedFetch(resource_type="Observation", codes=["a"]))
    plain = plan(PlannedFetch(resource_type="Observation"))
    assert widening_for(coded, unbounded) == "codes dropped"
    assert widening_for(plain, bounded) == "window dropped"
    assert widening_for(plain, unbounded) is None
    assert widening_for(FetchPlan(), bounded) is None


def test_only_relative_references_are_followed() -> None:
    raw = {"resourceType": "MedicationRequest", "medicationReference": {"reference": "Medication/m1"}}
    assert references_to_follow(raw) == [("medicationReference", "Medication/m1")]
    for reference in ("http://evil.example/fhir/Encounter/1", "urn:uuid:1", "#contained", "Encounter/../../x"):
        assert references_to_follow({"resourceType": "Observation", "encounter": {"reference": reference}}) == []


def test_as_of_drops_what_had_not_happened_yet() -> None:
    kept = {r["id"] for r in as_of(small_record(), date(2020, 1, 1))}
    assert "a1c-2019" in kept and "a1c-2021" not in kept
    assert "med-met" in kept  # undated: kept


def test_focus_manifest_lists_the_codes_the_question_names_first() -> None:
    manifest = build_manifest(small_record())
    focused = focus_manifest(manifest, "any HbA1c?")
    observation = next(t for t in focused.types if t.resource_type == "Observation")
    assert observation.codes[0].code == "4548-4"
    assert catalog_from(manifest)["Observation"] == {
        "4548-4": "Hemoglobin A1c/Hemoglobin.total in Blood", "29463-7": "Body Weight"}  # fmt: skip


def test_manifest_elements_cover_codes_and_dates() -> None:
    for name in ("code", "vaccineCode", "medicationCodeableConcept", "type", "category", "effectiveDateTime",
                 "onsetDateTime", "authoredOn", "period", "occurrenceDateTime", "recordedDate"):
        assert name in MANIFEST_ELEMENTS
