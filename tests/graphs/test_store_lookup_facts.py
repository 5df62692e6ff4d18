"""StoreRecordLookup.facts over an in-memory bundle store: the PatientFacts dict the consultation's contraindication
gate reads, with versioned sources, and the same refusal as summary() for a patient the store does not hold."""

from __future__ import annotations

from datetime import date

import pytest

from agents.navigator import Navigator
from agents.panel import PatientFacts, TestTraits, check_order, is_blocked
from graphs import StoreRecordLookup
from graphs.record_store import InMemoryRecordStore
from tests.doctor.fakes import scripted
from tests.tools.records.factories import allergy, condition, lab, patient

SUBJECT = {"subject": {"reference": "urn:uuid:p1"}}


def _bundle() -> dict:
    resources = [
        patient(meta={"versionId": "1"}),
        condition("esrd", "46177005", "End stage renal disease", "active", "2019-04-01", meta={"versionId": "2"},
                  **SUBJECT),
        lab("egfr", "62238-1", "eGFR", 12, "2024-03-01", unit="mL/min/{1.73_m2}", meta={"versionId": "5"},
            **SUBJECT),
        {**allergy("al", "Shellfish"), "patient": {"reference": "urn:uuid:p1"}},
        # another patient's contrast allergy must not leak into this one's facts
        {**allergy("other", "Iodinated contrast media"), "patient": {"reference": "Patient/p2"}},
    ]
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}


def _lookup(patient_id: str = "p1") -> StoreRecordLookup:
    return StoreRecordLookup(InMemoryRecordStore.from_bundle(_bundle()), Navigator(scripted()), patient_id,
                             now=date(2024, 3, 2))


async def test_facts_from_a_bundle_store_block_contrast() -> None:
    facts = await _lookup().facts()
    assert facts["conditions"] == [["End stage renal disease", "Condition/esrd/_history/2"]]
    assert facts["labs"] == {"eGFR": [12.0, "mL/min/{1.73_m2}", "Observation/egfr/_history/5"]}
    assert facts["allergies"] == [["Shellfish", "AllergyIntolerance/al"]]
    found = check_order(TestTraits(name="CT abdomen with contrast", uses_contrast="iodinated",
                                   ionising_radiation=True), PatientFacts(**facts))
    assert is_blocked(found)
    assert {c.rule for c in found} == {"iodinated-contrast-kidney", "iodine-or-shellfish-allergy"}


async def test_facts_of_an_unknown_patient_raise_like_the_summary() -> None:
    with pytest.raises(LookupError, match="Patient/nobody"):
        await _lookup("nobody").facts()
