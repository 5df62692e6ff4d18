"""The demo patients' FHIR records: valid R4, consistent with each case's history, and silent about its answer."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from simulations.cases import demo_cases, get_demo_case
from simulations.demo_records import (
    RECENT_LIMIT,
    DemoRecordError,
    ckd_epi_2021,
    demo_patient_id,
    demo_record_bundle,
    demo_record_bundles,
    write_demo_bundles,
)
from tests.conftest import DEMO_REFERENCE_DATE

CASES = demo_cases()
TODAY = DEMO_REFERENCE_DATE

# What each record must hold as active problems (from the case's past medical history) ...
ACTIVE_PROBLEMS = {
    "chest-pain": ["essential hypertension", "hyperlipidemia", "type 2 diabetes mellitus", "nicotine dependence"],
    "sudden-headache": ["polycystic kidney disease", "essential hypertension"],
    "fever-cough": ["chronic obstructive lung disease", "essential hypertension"],
    "polyuria-vomiting": ["celiac disease"],
    "abdominal-pain": [],
    "flank-pain": ["gout"],
    "barking-cough": [],
}
# ... the smoking status its social history gives (None: not stated, so not recorded) ...
SMOKING = {"chest-pain": "daily", "sudden-headache": "daily", "fever-cough": "ex-smoker", "polyuria-vomiting": "never",
           "abdominal-pain": "never", "flank-pain": None, "barking-cough": None}
# ... and words that would give today's answer away, or name a test result the doctor has yet to ask for.
ANSWER_WORDS = {
    "chest-pain": ["infarction", "troponin", "electrocardiogram", "ischemi"],
    "sudden-headache": ["subarachnoid", "aneurysm", "lumbar puncture", "cerebrospinal", "xanthochrom"],
    "fever-cough": ["pneumonia", "consolidation", "sputum", "c reactive protein", "x-ray"],
    "polyuria-vomiting": ["ketoacidosis", "diabetes", "ketone", "hydroxybutyrate", "bicarbonate", "insulin", "hba1c",
                          "hemoglobin a1c"],
    "abdominal-pain": ["appendic", "c reactive protein", "computed tomography"],
    "flank-pain": ["nephrolithiasis", "urolithiasis", "calculus", "kidney stone", "urine", "hydronephrosis"],
    "barking-cough": ["croup", "laryngotracheitis", "parainfluenza", "stridor", "x-ray"],
}


def resources(bundle: dict[str, Any], rtype: str | None = None) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if rtype is None or e["resource"]["resourceType"] == rtype]


def text_of(concept: dict[str, Any]) -> str:
    return " ".join([concept.get("text", ""), *(c.get("display", "") for c in concept.get("coding", []))]).lower()


def dates_in(node: Any) -> list[date]:
    found: list[date] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and key in {"birthDate", "onsetDateTime", "abatementDateTime", "recordedDate",
                                                  "authoredOn", "effectiveDateTime", "issued", "occurrenceDateTime",
                                                  "performedDateTime", "start", "end", "date"}:
                found.append(datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value))
            else:
                found += dates_in(value)
    elif isinstance(node, list):
        for item in node:
            found += dates_in(item)
    return found


@pytest.fixture(scope="module")
def bundles() -> dict[str, dict[str, Any]]:
    return {case.slug: demo_record_bundle(case, reference_date=TODAY) for case in CASES}


def test_one_bundle_per_demo_case_with_kept_ids(bundles):
    assert [b["entry"][2]["resource"]["id"] for b in demo_record_bundles(reference_date=TODAY)] == [
        f"demo-{case.slug}" for case in CASES
    ]
    for slug, bundle in bundles.items():
        assert bundle["type"] == "transaction"
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        patients = resources(bundle, "Patient")
        assert [p["id"] for p in patients] == [f"demo-{slug}"]


def test_every_resource_validates_with_fhir_r4b(bundles):
    for bundle in bundles.values():
        Bundle.model_validate(bundle)
        for resource in resources(bundle):
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_the_same_reference_date_gives_the_same_bundle_and_another_date_moves_it():
    now = demo_record_bundle("chest-pain", reference_date=TODAY)
    assert now == demo_record_bundle("chest-pain", reference_date=TODAY)
    later = demo_record_bundle("chest-pain", reference_date=TODAY + timedelta(days=365))
    assert resources(later, "Patient")[0]["birthDate"] != resources(now, "Patient")[0]["birthDate"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
def test_demographics_match_the_case(case, bundles):
    patient = resources(bundles[case.slug], "Patient")[0]
    demographics = case.raw["OSCE_Examination"]["Patient_Actor"]["Demographics"].lower()
    age = int(re.search(r"(\d+)-year-old", demographics).group(1))
    born = date.fromisoformat(patient["birthDate"])
    assert TODAY.year - born.year - ((TODAY.month, TODAY.day) < (born.month, born.day)) == age
    female = re.search(r"\b(woman|female|girl)\b", demographics) is not None
    assert patient["gender"] == ("female" if female else "male")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
def test_the_record_holds_history_only(case, bundles):
    born = date.fromisoformat(resources(bundles[case.slug], "Patient")[0]["birthDate"])
    for resource in resources(bundles[case.slug]):
        if resource["resourceType"] in ("Patient", "Organization", "Practitioner"):
            continue
        for when in dates_in(resource):
            assert born <= when <= TODAY - RECENT_LIMIT, (resource["id"], when)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
def test_the_record_never_names_the_answer_or_todays_results(case, bundles):
    text = json.dumps(bundles[case.slug]).lower()
    assert case.correct_diagnosis.lower() not in text
    assert [w for w in ANSWER_WORDS[case.slug] if w in text] == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
def test_problems_match_the_past_medical_history(case, bundles):
    conditions = resources(bundles[case.slug], "Condition")
    active = [text_of(c["code"]) for c in conditions if c["clinicalStatus"]["coding"][0]["code"] == "active"]
    for problem in ACTIVE_PROBLEMS[case.slug]:
        assert any(problem in a for a in active), (problem, active)
    if not ACTIVE_PROBLEMS[case.slug]:
        assert active == []
    resolved = [c for c in conditions if c["clinicalStatus"]["coding"][0]["code"] == "resolved"]
    assert all("abatementDateTime" in c for c in resolved)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
def test_active_medications_are_exactly_the_current_ones(case, bundles):
    listed = case.raw["OSCE_Examination"]["Patient_Actor"].get("Current_Medications", [])
    active = [text_of(m["medicationCodeableConcept"]) for m in resources(bundles[case.slug], "MedicationRequest")
              if m["status"] == "active"]
    assert len(active) == len(listed)
    for medicine in listed:
        name = medicine.split()[0].lower()
        assert any(name in a for a in active), (name, active)


def test_chest_pain_record_has_his_risk_factors_and_treatment_history(bundles):
    bundle = bundles["chest-pain"]
    meds = {text_of(m["medicationCodeableConcept"]): m for m in resources(bundle, "MedicationRequest")}
    active = [name for name, m in meds.items() if m["status"] == "active"]
    for drug in ("lisinopril 20", "atorvastatin 40", "metformin hydrochloride 1000"):
        assert any(drug in a for a in active), drug
    stopped = [m for m in meds.values() if m["status"] == "stopped"]
    assert len(stopped) >= 2 and all(m.get("statusReason", {}).get("text") for m in stopped)
    hba1c = sorted((o["effectiveDateTime"], o["valueQuantity"]["value"]) for o in resources(bundle, "Observation")
                   if o["code"]["coding"][0]["code"] == "4548-4")
    assert 3 <= len(hba1c) <= 8 and hba1c[-1][1] > hba1c[0][1]  # worsening control over the years
    family = resources(bundle, "FamilyMemberHistory")
    assert family and family[0]["relationship"]["coding"][0]["code"] == "FTH"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
def test_labs_carry_loinc_units_and_ranges(case, bundles):
    observations = resources(bundles[case.slug], "Observation")
    labs = [o for o in observations if o["category"][0]["coding"][0]["code"] == "laboratory"]
    assert labs, case.slug
    for lab in labs:
        assert lab["code"]["coding"][0]["system"] == "http://loinc.org"
        assert lab["valueQuantity"]["system"] == "http://unitsofmeasure.org" and lab["valueQuantity"]["code"]
        assert lab["referenceRange"] and lab["interpretation"]


def test_egfr_follows_creatinine(bundles):
    observations = resources(bundles["sudden-headache"], "Observation")
    by_visit: dict[str, dict[str, float]] = {}
    for o in observations:
        by_visit.setdefault(o["encounter"]["reference"], {})[o["code"]["coding"][0]["code"]] = o.get(
            "valueQuantity", {}).get("value")
    pairs = sorted((v["2160-0"], v["98979-8"]) for v in by_visit.values() if "2160-0" in v)
    assert len(pairs) >= 3
    assert [egfr for _, egfr in pairs] == sorted((egfr for _, egfr in pairs), reverse=True)
    assert round(ckd_epi_2021(1.0, 50, female=False)) == 92  # CKD-EPI 2021 calculators give 92


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
def test_smoking_status_follows_the_social_history(case, bundles):
    statuses = {text_of(o["valueCodeableConcept"]) for o in resources(bundles[case.slug], "Observation")
                if o["code"]["coding"][0]["code"] == "72166-2"}
    if SMOKING[case.slug] is None:
        assert statuses == set()
    else:
        assert statuses and all(SMOKING[case.slug] in s for s in statuses)


def test_vaccination_history_matches_what_the_cases_say(bundles):
    fever = [text_of(i["vaccineCode"]) for i in resources(bundles["fever-cough"], "Immunization")]
    assert fever and not [v for v in fever if "pneumococcal" in v]  # "has not had a pneumococcal vaccine"
    child = [text_of(i["vaccineCode"]) for i in resources(bundles["barking-cough"], "Immunization")]
    for vaccine, doses in (("dtap", 4), ("mmr", 1), ("pneumococcal", 4), ("ipv", 3)):
        assert sum(vaccine in v for v in child) == doses, vaccine
    child_codes = {o["code"]["coding"][0]["code"] for o in resources(bundles["barking-cough"], "Observation")}
    assert "85354-9" not in child_codes and "72166-2" not in child_codes  # no blood pressure, no smoking status


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
def test_references_stay_inside_the_bundle(case, bundles):
    ids = {f"{r['resourceType']}/{r['id']}" for r in resources(bundles[case.slug])}
    refs = re.findall(r'"reference": "([^"]+)"', json.dumps(bundles[case.slug]))
    assert refs and set(refs) <= ids


def test_patient_ids_and_unknown_cases():
    assert demo_patient_id("demo:chest-pain") == demo_patient_id(get_demo_case("chest-pain")) == "demo-chest-pain"
    # each demo case names the patient whose record this module writes
    assert [c.patient_id for c in CASES] == [demo_patient_id(c.slug) for c in CASES]
    with pytest.raises(DemoRecordError, match="no demo record facts"):
        demo_record_bundle("broken-leg", reference_date=TODAY)


def test_write_demo_bundles_writes_one_file_per_patient(tmp_path):
    paths = write_demo_bundles(tmp_path / "out", reference_date=TODAY)
    assert [p.name for p in paths] == [f"demo-{c.slug}.json" for c in CASES]
    assert json.loads(paths[0].read_text()) == demo_record_bundle(CASES[0], reference_date=TODAY)


@pytest.mark.slow
def test_demo_records_load_into_sekmet_and_read_back_valid(demo_fhir_server, demo_load, bundles):
    assert demo_load.patient_ids == [f"demo-{c.slug}" for c in CASES]
    with httpx.Client(base_url=demo_fhir_server.base_url + "/", timeout=30, trust_env=False) as http:
        found = http.get("Patient", params={"name": "Keane"}).json()["entry"]
        assert "demo-chest-pain" in [e["resource"]["id"] for e in found]
        for case in CASES:
            everything = http.get(f"Patient/demo-{case.slug}/$everything").json()
            got = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in everything["entry"]}
            # sekmet 0.1.1 cannot search FamilyMemberHistory by patient, so $everything leaves it out
            sent = {f"{r['resourceType']}/{r['id']}" for r in resources(bundles[case.slug])
                    if r["resourceType"] != "FamilyMemberHistory"}
            assert got == sent, case.slug
            for entry in everything["entry"]:
                get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
