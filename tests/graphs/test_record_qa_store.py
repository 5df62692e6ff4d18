"""InMemoryRecordStore: FHIR search semantics over resource dicts (patient, codes, dates, sort, count, elements)."""

from __future__ import annotations

import pytest

from graphs.record_store import (
    InMemoryRecordStore,
    RecordStore,
    RecordStoreError,
    UnsupportedSearchError,
)
from tests.navigator.small_record import PATIENT, small_record


@pytest.fixture
def store() -> InMemoryRecordStore:
    return InMemoryRecordStore(small_record())


def ids(resources: list[dict]) -> list[str]:
    return [r["id"] for r in resources]


def test_is_a_record_store(store: InMemoryRecordStore) -> None:
    assert isinstance(store, RecordStore)
    assert issubclass(UnsupportedSearchError, RecordStoreError)


async def test_patient_resources_by_type_and_elements(store: InMemoryRecordStore) -> None:
    everything = await store.patient_resources(PATIENT)
    # The Medication is not the patient's (it is only referenced): 14 of the 15 resources.
    assert len(everything) == 14 and "med-met" not in ids(everything)
    light = await store.patient_resources(PATIENT, ["Observation"], elements=["code"])
    assert ids(light) == ["a1c-2019", "a1c-2021", "a1c-2023", "wt-2023"]
    assert set(light[0]) == {"resourceType", "id", "code"}
    assert await store.patient_resources("someone-else") == []


async def test_search_by_code_date_sort_and_count(store: InMemoryRecordStore) -> None:
    found = await store.search(
        "Observation",
        {"patient": PATIENT, "code": "http://loinc.org|4548-4", "date": ["ge2020-01-01", "le2024-06-01"],
         "_sort": "-date", "_count": "5"},
    )  # fmt: skip
    assert ids(found) == ["a1c-2023", "a1c-2021"]
    newest = await store.search("Observation", {"patient": f"Patient/{PATIENT}", "code": "4548-4,29463-7",
                                                "_sort": "-date", "_count": "1"})
    assert ids(newest) == ["wt-2023"]
    oldest = await store.search("Observation", {"code": "4548-4", "_sort": "date"})
    assert ids(oldest) == ["a1c-2019", "a1c-2021", "a1c-2023"]


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("date", "2021", ["e-2021"]),  # a year covers the whole year
        ("date", "ge2021-06-16", ["e-2023"]),
        ("date", "lt2021-06-15", ["e-2019"]),
        ("date", "le2021-06", ["e-2019", "e-2021"]),
        ("type", "185349003", ["e-2019", "e-2021", "e-2023"]),
        ("_id", "e-2019,e-2023", ["e-2019", "e-2023"]),
    ],
)
async def test_encounter_parameters(store: InMemoryRecordStore, param: str, value: str, expected: list[str]) -> None:
    assert ids(await store.search("Encounter", {param: value})) == expected


async def test_type_specific_date_parameters(store: InMemoryRecordStore) -> None:
    assert ids(await store.search("Condition", {"onset-date": "ge2016-01-01"})) == ["c-htn"]
    assert ids(await store.search("MedicationRequest", {"authoredon": "lt2016", "_sort": "-authoredon"})) == ["mr-met"]
    assert ids(await store.search("Immunization", {"vaccine-code": "140", "date": "2023-10"})) == ["imm-flu"]


@pytest.mark.parametrize("params", [{"name:contains": "x"}, {"date": "yesterday"}, {"_count": "many"},
                                    {"_sort": "code"}])
async def test_unsupported_searches_raise(store: InMemoryRecordStore, params: dict) -> None:
    with pytest.raises(UnsupportedSearchError):
        await store.search("Observation", params)


async def test_resolve_relative_references_only(store: InMemoryRecordStore) -> None:
    assert (await store.resolve("Medication/med-met"))["id"] == "med-met"
    assert await store.resolve("Medication/absent") is None
    assert await store.resolve("http://evil.example/fhir/Medication/med-met") is None
    assert await store.resolve("urn:uuid:123") is None


async def test_results_are_copies(store: InMemoryRecordStore) -> None:
    (first,) = await store.search("Patient", {"_id": PATIENT})
    first["gender"] = "changed"
    assert (await store.resolve(f"Patient/{PATIENT}"))["gender"] == "female"


async def test_from_bundle_rewrites_full_url_references() -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:aaa", "resource": {"resourceType": "Patient", "id": "aaa"}},
        {"fullUrl": "urn:uuid:bbb", "resource": {"resourceType": "Observation", "id": "bbb",
                                                 "subject": {"reference": "urn:uuid:aaa"},
                                                 "effectiveDateTime": "2020-01-01"}},
    ]}  # fmt: skip
    store = InMemoryRecordStore.from_bundle(bundle)
    (obs,) = await store.search("Observation", {"patient": "aaa"})
    assert obs["subject"] == {"reference": "Patient/aaa"}
    assert bundle["entry"][1]["resource"]["subject"]["reference"] == "urn:uuid:aaa"  # the input is untouched
