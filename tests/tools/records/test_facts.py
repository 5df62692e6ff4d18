"""patient_facts on hand-written FHIR R4 records: what each fact list keeps, the labs it reads by LOINC code and by
name, pregnancy windows, versioned sources, and the contraindication gate it feeds (contrast with kidney failure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agents.panel import PatientFacts, TestTraits, check_order, is_blocked
from tests.tools.records.factories import LOINC, SNOMED, allergy, concept, condition, lab, medication, patient
from tools.records import patient_facts

CT_CONTRAST = TestTraits(name="CT abdomen with contrast", uses_contrast="iodinated", ionising_radiation=True)


def _observation(rid: str, code: str, name: str, when: str, **value: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final", "code": concept(code, name),
            "effectiveDateTime": when, **value}


def _device(rid: str, name: str, status: str = "active") -> dict[str, Any]:
    return {"resourceType": "Device", "id": rid, "status": status, "type": concept("14106009", name, SNOMED),
            "patient": {"reference": "Patient/p1"}}


KIDNEY_FAILURE = [
    patient(),
    condition("ckd", "46177005", "End stage renal disease", "active", "2019-04-01", meta={"versionId": "3"}),
    lab("egfr-old", "33914-3", "eGFR (MDRD)", 35, "2021-01-01", unit="mL/min/{1.73_m2}"),
    lab("egfr", "62238-1", "eGFR (CKD-EPI)", 12, "2024-03-01", unit="mL/min/{1.73_m2}", meta={"versionId": "2"}),
    lab("cr", "2160-0", "Creatinine", 5.9, "2024-03-01"),
]


def test_kidney_failure_facts_block_a_contrast_ct() -> None:
    facts = patient_facts(KIDNEY_FAILURE)
    assert facts["conditions"] == [["End stage renal disease", "Condition/ckd/_history/3"]]
    # the newest eGFR wins across LOINC codes (12 in 2024, not 35 in 2021), under the name the rules read
    assert facts["labs"]["eGFR"] == [12.0, "mL/min/{1.73_m2}", "Observation/egfr/_history/2"]
    assert facts["labs"]["creatinine"] == [5.9, "mg/dL", "Observation/cr"]
    found = check_order(CT_CONTRAST, PatientFacts(**facts))
    assert is_blocked(found)
    block = found[0]
    assert block.rule == "iodinated-contrast-kidney" and block.severity == "block"
    assert "eGFR 12" in block.reason and "End stage renal disease on record" in block.reason
    # the reason cites the record's resources, versioned, so the blocked order points at what exists
    assert set(block.sources) == {"Observation/egfr/_history/2", "Observation/cr", "Condition/ckd/_history/3"}


def test_the_same_ct_passes_for_normal_kidneys() -> None:
    facts = patient_facts([patient(), lab("egfr", "62238-1", "eGFR", 92, "2024-03-01", unit="mL/min/{1.73_m2}")])
    assert check_order(CT_CONTRAST, PatientFacts(**facts)) == []


def test_resolved_refuted_and_stopped_things_are_left_out() -> None:
    record = [
        patient(),
        condition("aki", "14669001", "Acute kidney injury", "resolved", "2015-01-01", "2015-02-01"),
        condition("ref", "46177005", "End stage renal disease", "active", "2020-01-01",
                  verificationStatus={"coding": [{"code": "refuted"}]}),
        condition("htn", "38341003", "Hypertension", "active", "2012-01-01"),
        condition("htn2", "38341003", "Hypertension", "active", "2018-01-01"),  # same concept: once, newest
        allergy("a1", "Iodinated contrast media"), allergy("a2", "Latex", status="resolved"),
        medication("m1", "855332", "Warfarin 5 MG", "active", "2023-01-01"),
        medication("m2", "860975", "Metformin 500 MG", "stopped", "2016-01-01"),
        medication("m3", "1", "Apixaban 5 MG", "entered-in-error", "2023-01-01"),
        _device("d1", "Cardiac pacemaker"), _device("d2", "Insulin pump", status="inactive"),
    ]
    facts = patient_facts(record)
    assert facts["conditions"] == [["Hypertension", "Condition/htn2"]]
    assert facts["allergies"] == [["Iodinated contrast media", "AllergyIntolerance/a1"]]
    assert facts["medications"] == [["Warfarin 5 MG", "MedicationRequest/m1"]]
    assert facts["devices"] == [["Cardiac pacemaker", "Device/d1"]]
    assert facts["pregnant"] is None and facts["pregnancy_source"] == ""
    patient_known = PatientFacts(**facts)
    assert is_blocked(check_order(CT_CONTRAST, patient_known))  # the contrast allergy, not the refuted ESRD
    assert [c.rule for c in check_order(CT_CONTRAST, patient_known)] == ["iodinated-contrast-allergy"]
    assert is_blocked(check_order(TestTraits(name="MRI brain", mri=True), patient_known))


def test_allergy_text_names_substance_and_reactions() -> None:
    raw = allergy("a1", "Penicillin V")
    raw["reaction"] = [{"manifestation": [{"text": "Hives"}, {"text": "Anaphylaxis"}]},
                       {"manifestation": [{"text": "Hives"}]}]
    assert patient_facts([patient(), raw])["allergies"] == [["Penicillin V (reaction: Hives, Anaphylaxis)",
                                                            "AllergyIntolerance/a1"]]


def test_labs_by_name_only_without_a_loinc_code_and_never_platelet_indices() -> None:
    record = [
        patient(),
        # LOINC-coded indices that mention platelets and creatinine: neither a count nor a serum creatinine
        lab("mpv", "32623-1", "Platelet mean volume [Entitled volume] in Blood", 10.4, "2024-03-01", unit="fL"),
        lab("ratio", "44734-2", "Urea nitrogen/Creatinine [Mass Ratio] in Serum", 20, "2024-03-01", unit="{ratio}"),
        lab("plt", "777-3", "Platelets [#/volume] in Blood", 41, "2024-02-01", unit="10*3/uL"),
        # a hand-entered record with local codes: read by its name
        {**lab("inr", "X1", "INR", 2.8, "2024-03-02", unit=""), "code": {"coding": [{"system": "urn:local",
                                                                                      "code": "X1"}],
                                                                          "text": "INR"}},
    ]
    facts = patient_facts(record)
    assert facts["labs"] == {"platelets": [41.0, "10*3/uL", "Observation/plt"], "INR": [2.8, "", "Observation/inr"]}
    warnings = check_order(TestTraits(name="Liver biopsy", invasive=True), PatientFacts(**facts))
    assert {c.rule for c in warnings} == {"invasive-low-platelets", "invasive-high-inr"}


def _pregnancy_status(rid: str, answer: str, display: str, when: str) -> dict[str, Any]:
    return _observation(rid, "82810-3", "Pregnancy status", when,
                        valueCodeableConcept={"coding": [{"system": LOINC, "code": answer, "display": display}]})


def test_pregnancy_status_and_its_windows() -> None:
    pregnant = _pregnancy_status("ps", "LA15173-0", "Pregnant", "2024-01-10")
    facts = patient_facts([patient(), pregnant], now=datetime(2024, 3, 1, tzinfo=UTC))
    assert facts["pregnant"] is True and facts["pregnancy_source"] == "Observation/ps"
    radiation = check_order(CT_CONTRAST, PatientFacts(**{**facts, "labs": {}}))
    assert [c.rule for c in radiation] == ["radiation-pregnancy"] and radiation[0].sources == ("Observation/ps",)
    # a year later the same answer says nothing about now
    assert patient_facts([patient(), pregnant], now=datetime(2025, 3, 1, tzinfo=UTC))["pregnant"] is None
    # "not pregnant" is trusted for weeks only, and a newer answer wins
    negative = _pregnancy_status("neg", "LA26683-5", "Not pregnant", "2024-02-20")
    assert patient_facts([patient(), pregnant, negative], now=datetime(2024, 3, 1, tzinfo=UTC))["pregnant"] is False
    assert patient_facts([patient(), negative], now=datetime(2024, 6, 1, tzinfo=UTC))["pregnant"] is None
    # without `now` the record's latest date anchors the window
    assert patient_facts([patient(), pregnant, lab("x", "2160-0", "Creatinine", 0.8, "2024-02-01")])["pregnant"]


def test_positive_hcg_and_an_active_pregnancy_condition() -> None:
    hcg = _observation("hcg", "2106-3", "Choriogonadotropin [Presence] in Urine", "2024-02-28",
                       valueCodeableConcept={"coding": [{"system": SNOMED, "code": "10828004", "display": "Positive"}]})
    assert patient_facts([patient(), hcg], now=datetime(2024, 3, 1, tzinfo=UTC))["pregnant"] is True
    record = [patient(), condition("preg", "72892002", "Normal pregnancy", "active", "2024-01-01",
                                   meta={"versionId": "1"})]
    facts = patient_facts(record)
    assert (facts["pregnant"], facts["pregnancy_source"]) == (True, "Condition/preg/_history/1")
    delivered = [patient(), condition("preg", "72892002", "Normal pregnancy", "resolved", "2023-01-01", "2023-09-01")]
    assert patient_facts(delivered)["pregnant"] is None


def test_malformed_resources_are_left_out() -> None:
    record: list[Any] = [
        patient(), "not a resource", {"resourceType": "Condition"},  # no id: nothing to cite
        {"resourceType": "Observation", "id": "o1", "code": concept("62238-1", "eGFR"), "valueQuantity": "12"},
        {"resourceType": "Condition", "id": "c1", "code": 7},
    ]
    facts = patient_facts(record)
    assert facts == {"conditions": [], "allergies": [], "medications": [], "devices": [], "labs": {},
                     "pregnant": None, "pregnancy_source": ""}
    PatientFacts(**facts)  # and the empty dict is still a valid PatientFacts
