"""Reading the model's fetch plan: only the patient's own types and codes survive; the keyword fallback."""

from __future__ import annotations

import json

import pytest

from agents.navigator import keyword_plan, parse_plan, validate_plan
from agents.navigator.plan import MAX_FETCHES

CATALOG = {
    "Observation": {"4548-4": "Hemoglobin A1c/Hemoglobin.total in Blood", "29463-7": "Body Weight"},
    "Condition": {"44054006": "Diabetes mellitus type 2"},
    "MedicationRequest": {"314076": "Lisinopril 10 MG Oral Tablet"},
    "AllergyIntolerance": {"91936005": "Allergy to penicillin"},
    "Patient": {},
}


def test_json_plan_with_codes_and_dates() -> None:
    reply = 'Plan:\n```json\n{"fetches": [{"resource_type": "Observation", "codes": ["4548-4"], ' \
            '"start": "2021-01-01", "end": null}]}\n```'
    parsed = parse_plan(reply, CATALOG)
    assert parsed.reason == "json"
    assert parsed.plan is not None
    (fetch,) = parsed.plan.fetches
    assert (fetch.resource_type, fetch.codes, str(fetch.start)) == ("Observation", ["4548-4"], "2021-01-01")
    assert fetch.end is None


@pytest.mark.parametrize(
    ("reply", "types", "codes"),
    [
        ('{"types": ["Condition", "MedicationRequests"]}', ["Condition", "MedicationRequest"], [[], []]),
        ('["observation"]', ["Observation"], [[]]),
        # A system|code token, and a display written instead of the code, both map to the catalog's code.
        ('{"fetches": [{"type": "Observation", "codes": ["http://loinc.org|4548-4", "body weight"]}]}',
         ["Observation"], [["4548-4", "29463-7"]]),
        ("I would look at the Condition and AllergyIntolerance resources.", ["Condition", "AllergyIntolerance"],
         [[], []]),
    ],
)
def test_tolerant_shapes(reply: str, types: list[str], codes: list[list[str]]) -> None:
    parsed = parse_plan(reply, CATALOG)
    assert parsed.plan is not None, parsed.reason
    assert parsed.plan.types == types
    assert [f.codes for f in parsed.plan.fetches] == codes


def test_only_catalog_types_and_codes_survive() -> None:
    reply = json.dumps({"fetches": [
        {"resource_type": "http://evil.example/Patient", "codes": ["x"]},
        {"resource_type": "Observation", "codes": ["0000-0", "4548-4"], "start": "not a date"},
        {"resource_type": "Procedure"},  # the record has none
    ]})  # fmt: skip
    parsed = parse_plan(reply, CATALOG)
    assert parsed.plan is not None
    assert parsed.plan.types == ["Observation"]
    assert parsed.plan.fetches[0].codes == ["4548-4"]
    assert parsed.plan.fetches[0].start is None


@pytest.mark.parametrize("reply", ["", "   ", "I cannot help with that.", '{"fetches": [{"resource_type": "Goal"}]}'])
def test_unusable_replies(reply: str) -> None:
    parsed = parse_plan(reply, CATALOG)
    assert parsed.plan is None
    assert parsed.reason


def test_plan_is_capped() -> None:
    catalog = {f"Type{i}": {} for i in range(10)}
    assert len(validate_plan({"types": list(catalog)}, catalog).fetches) == MAX_FETCHES


@pytest.mark.parametrize(
    ("question", "types", "codes"),
    [
        ("What was the latest A1c?", ["Observation"], [["4548-4"]]),
        ("Is she allergic to anything?", ["AllergyIntolerance"], [[]]),
        ("Which medications is she taking?", ["MedicationRequest"], [[]]),  # no MedicationStatement here
        ("How is she?", ["Condition", "MedicationRequest", "Observation", "AllergyIntolerance"], [[], [], [], []]),
    ],
)
def test_keyword_plan(question: str, types: list[str], codes: list[list[str]]) -> None:
    plan = keyword_plan(question, CATALOG)
    assert plan.types == types
    assert [f.codes for f in plan.fetches] == codes


def test_a_plan_cut_off_by_the_token_limit_keeps_its_complete_elements() -> None:
    # What SmolLM2 wrote with a 64-token cap: pretty-printed, cut inside the codes list.
    reply = '{\n  "fetches": [\n    {\n      "resource_type": "Observation",\n      "codes": ["4548-4", ' \
            '"Hemoglobin A1c/Hemoglobin.total in Blood", "Body Weight (http://loinc.org|29463-7)", "Blood'
    parsed = parse_plan(reply, CATALOG)
    assert parsed.plan is not None and parsed.reason == "json"
    assert parsed.plan.fetches[0].codes == ["4548-4", "29463-7"]


def test_close_truncated() -> None:
    from agents.json_objects import close_truncated

    assert close_truncated('{"a": "x, \\" y", "b": [1, 2, 3') == {"a": 'x, " y', "b": [1, 2]}
    assert close_truncated('{"a": "no comma at all') is None
