"""Safety inside the panel's loop: can't-miss diagnoses kept until excluded, and contraindications on ordered tests."""

from __future__ import annotations

import pytest

from agents.panel.safety import (
    CantMiss,
    PatientFacts,
    TestTraits,
    cant_miss_for,
    check_order,
    complaints_in,
    creatinine_mg_dl,
    excluding_finding,
    is_blocked,
    keep_in_differential,
    load_cant_miss_table,
    open_cant_miss,
    parse_cant_miss_table,
)
from agents.panel.safety import Lab as LabValue

CONTRAST_CT = TestTraits("CT abdomen and pelvis with contrast", uses_contrast="iodinated", ionising_radiation=True)
PLAIN_CT = TestTraits("CT head without contrast", ionising_radiation=True)
MRI_BRAIN = TestTraits("MRI brain", mri=True)
GADOLINIUM_MRI = TestTraits("MRI liver with gadolinium", uses_contrast="gadolinium", mri=True)
BIOPSY = TestTraits("Liver biopsy", invasive=True)


def _open(text: str, differential: list[str], findings: list[str]) -> set[str]:
    return {item.diagnosis for item in open_cant_miss(cant_miss_for(text), differential, findings)}


# --- the table ---------------------------------------------------------------------------------------------------


def test_table_covers_at_least_twelve_complaints_with_defined_diagnoses() -> None:
    table = load_cant_miss_table()
    assert len(table.complaints) >= 12
    for complaint in table.complaints:
        assert complaint.diagnoses and all(name in table.diagnoses for name in complaint.diagnoses)


def test_table_rejects_a_complaint_naming_an_undefined_diagnosis() -> None:
    data = {"diagnoses": {}, "complaints": [{"complaint": "x", "keywords": ["x"], "diagnoses": ["missing"]}]}
    with pytest.raises(ValueError, match="missing"):
        parse_cant_miss_table(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("58-year-old man with crushing chest pain and breathlessness", ["chest pain", "shortness of breath"]),
        ("Worst headache of my life", ["headache"]),
        ("I fainted at the supermarket", ["syncope"]),
        ("32 weeks pregnant with painless vaginal bleeding", ["vaginal bleeding in pregnancy"]),
        ("Patient denies chest pain; came in for a rash", []),
        ("vaginal bleeding", []),
    ],
)
def test_complaints_in(text: str, expected: list[str]) -> None:
    assert complaints_in(text) == expected


def test_cant_miss_for_chest_pain_lists_the_classic_six_once_each() -> None:
    names = [item.diagnosis for item in cant_miss_for("chest pain and shortness of breath")]
    assert names[:6] == [
        "acute coronary syndrome",
        "aortic dissection",
        "pulmonary embolism",
        "tension pneumothorax",
        "oesophageal rupture",
        "cardiac tamponade",
    ]
    assert len(names) == len(set(names))  # PE is under both complaints but listed once
    assert "acute heart failure" in names


# --- kept until excluded -------------------------------------------------------------------------------------------


def test_chest_pain_keeps_acs_dissection_and_pe_until_excluded() -> None:
    still_open = _open("chest pain", ["Gastro-oesophageal reflux disease", "Costochondritis"], ["ECG normal"])
    assert {"acute coronary syndrome", "aortic dissection", "pulmonary embolism"} <= still_open


def test_negative_ct_angiogram_excludes_dissection_but_not_acs() -> None:
    findings = ["CT angiogram of the chest: negative for aortic dissection"]
    still_open = _open("chest pain", [], findings)
    assert "aortic dissection" not in still_open
    assert "acute coronary syndrome" in still_open


def test_the_excluding_finding_is_returned_for_the_provenance_trail() -> None:
    dissection = next(i for i in cant_miss_for("chest pain") if i.diagnosis == "aortic dissection")
    findings = ["Troponin 0.01 ng/mL", "CTA negative for dissection"]
    assert excluding_finding(dissection, findings) == "CTA negative for dissection"


@pytest.mark.parametrize(
    "finding",
    [
        "Serial troponins negative at 0 and 3 hours",
        "High-sensitivity troponin I: 0.01 ng/mL (normal)",
        "Acute coronary syndrome ruled out",
        "Coronary angiogram normal",
    ],
)
def test_explicit_evidence_excludes_acs(finding: str) -> None:
    assert "acute coronary syndrome" not in _open("chest pain", [], [finding])


@pytest.mark.parametrize(
    "finding",
    [
        "ECG normal sinus rhythm",  # a normal ECG does not rule out ACS
        "Troponin not negative",
        "Troponin elevated, D-dimer negative",  # the negative belongs to the D-dimer
        "Troponin elevated and D-dimer negative",  # same, with no comma between
        "ACS not ruled out",
        "Troponin pending",
    ],
)
def test_weak_or_reversed_evidence_does_not_exclude_acs(finding: str) -> None:
    assert "acute coronary syndrome" in _open("chest pain", [], [finding])


def test_d_dimer_negative_excludes_pe_only() -> None:
    still_open = _open("chest pain", [], ["D-dimer negative"])
    assert "pulmonary embolism" not in still_open
    assert {"acute coronary syndrome", "aortic dissection"} <= still_open


@pytest.mark.parametrize("name", ["Acute inferior STEMI", "NSTEMI", "Myocardial infarction", "unstable angina"])
def test_aliases_in_the_differential_count_as_acs(name: str) -> None:
    assert "acute coronary syndrome" not in _open("chest pain", [name], [])


def test_short_alias_matches_whole_words_only() -> None:
    # "mi" must not be found inside "mild", nor "pe" inside "peptic".
    still_open = _open("chest pain", ["Mild peptic ulcer disease"], [])
    assert {"acute coronary syndrome", "pulmonary embolism"} <= still_open


# --- keep_in_differential ------------------------------------------------------------------------------------------


def _item(name: str) -> CantMiss:
    return CantMiss(diagnosis=name, complaint="chest pain")


def test_keep_in_differential_floors_and_renormalises() -> None:
    kept = keep_in_differential([("GERD", 0.6), ("Costochondritis", 0.4)], [_item("aortic dissection")], floor=0.05)
    assert kept == [
        ("GERD", pytest.approx(0.57)),
        ("Costochondritis", pytest.approx(0.38)),
        ("aortic dissection", 0.05),
    ]
    assert sum(p for _, p in kept) == pytest.approx(1.0)


def test_keep_in_differential_is_idempotent_and_alias_aware() -> None:
    acs = CantMiss(diagnosis="acute coronary syndrome", complaint="chest pain", aliases=("STEMI",))
    differential = [("STEMI", 0.9), ("Pericarditis", 0.1)]
    assert keep_in_differential(differential, [acs]) == differential


def test_keep_in_differential_shrinks_floors_that_would_swamp_the_model() -> None:
    items = [_item(f"d{i}") for i in range(10)]
    kept = dict(keep_in_differential([("Flu", 1.0)], items, floor=0.2))
    assert kept["Flu"] == pytest.approx(0.5)
    assert sum(kept.values()) == pytest.approx(1.0)


# --- contraindications ---------------------------------------------------------------------------------------------


def test_contrast_ct_blocked_for_a_patient_whose_record_shows_kidney_failure() -> None:
    facts = PatientFacts(labs={"eGFR": (18, "mL/min/1.73m2", "Observation/egfr-7/_history/1")})
    found = check_order(CONTRAST_CT, facts)
    assert is_blocked(found)
    block = found[0]
    assert block.rule == "iodinated-contrast-kidney" and block.severity == "block"
    assert "Observation/egfr-7/_history/1" in block.sources
    assert "eGFR 18" in block.reason


def test_the_same_patient_may_have_a_ct_without_contrast() -> None:
    facts = PatientFacts(labs={"eGFR": (18, "mL/min/1.73m2", "Observation/egfr-7/_history/1")})
    assert check_order(PLAIN_CT, facts) == []


@pytest.mark.parametrize(
    ("value", "unit", "blocked"),
    [(250, "umol/L", True), (250, "µmol/L", True), (90, "μmol/L", False), (2.8, "mg/dL", True), (1.1, "mg/dL", False)],
)
def test_creatinine_units_are_converted(value: float, unit: str, blocked: bool) -> None:
    facts = PatientFacts(labs={"Creatinine [Mass/volume] in Serum": (value, unit, "Observation/cr")})
    assert is_blocked(check_order(CONTRAST_CT, facts)) is blocked


def test_creatinine_without_a_unit_is_read_by_magnitude() -> None:
    assert creatinine_mg_dl(LabValue(265.2)) == pytest.approx(3.0)
    assert creatinine_mg_dl(LabValue(3.0)) == pytest.approx(3.0)


def test_creatinine_clearance_is_not_serum_creatinine() -> None:
    facts = PatientFacts(labs={"Creatinine clearance": (250, "mL/min", "Observation/cl")})
    assert check_order(CONTRAST_CT, facts) == []


@pytest.mark.parametrize(
    "condition",
    ["End-stage renal disease (disorder)", "ESRD on haemodialysis", "Chronic kidney disease stage 5 (disorder)",
     "CKD stage 4", "Acute kidney injury", "Dependence on renal dialysis (finding)"],
)  # fmt: skip
def test_kidney_failure_conditions_block_contrast(condition: str) -> None:
    found = check_order(CONTRAST_CT, PatientFacts(conditions=[(condition, "Condition/c1/_history/2")]))
    assert [c.rule for c in found if c.severity == "block"] == ["iodinated-contrast-kidney"]
    assert found[0].sources == ("Condition/c1/_history/2",)


def test_mild_ckd_does_not_warn_but_stage_3_does() -> None:
    assert check_order(CONTRAST_CT, PatientFacts(conditions=["Chronic kidney disease stage 1 (disorder)"])) == []
    found = check_order(CONTRAST_CT, PatientFacts(conditions=["Chronic kidney disease stage 3 (disorder)"]))
    assert [(c.rule, c.severity) for c in found] == [("iodinated-contrast-reduced-kidney", "warn")]


def test_contrast_allergy_blocks_and_shellfish_only_warns() -> None:
    allergic = PatientFacts(allergies=[("Iodinated contrast media (anaphylaxis)", "AllergyIntolerance/a1")])
    found = check_order(CONTRAST_CT, allergic)
    assert [(c.rule, c.severity) for c in found] == [("iodinated-contrast-allergy", "block")]
    assert found[0].sources == ("AllergyIntolerance/a1",)
    shellfish = check_order(CONTRAST_CT, PatientFacts(allergies=["Shellfish"]))
    assert [(c.rule, c.severity) for c in shellfish] == [("iodine-or-shellfish-allergy", "warn")]


def test_metformin_with_reduced_egfr_warns() -> None:
    facts = PatientFacts(
        medications=[("24 HR Metformin hydrochloride 500 MG", "MedicationRequest/m1")],
        labs={"eGFR": (38, "mL/min/1.73m2", "Observation/e1")},
    )
    found = check_order(CONTRAST_CT, facts)
    assert {(c.rule, c.severity) for c in found} == {
        ("iodinated-contrast-reduced-kidney", "warn"),
        ("iodinated-contrast-metformin", "warn"),
    }
    assert not is_blocked(found)


def test_gadolinium_blocked_with_egfr_below_30() -> None:
    found = check_order(GADOLINIUM_MRI, PatientFacts(labs={"GFR/1.73 sq M.predicted": (22, "mL/min", "Obs/g")}))
    assert [(c.rule, c.severity) for c in found] == [("gadolinium-kidney", "block")]
    assert "nephrogenic systemic fibrosis" in found[0].reason


def test_mri_with_pacemaker_blocked_and_conditional_device_warns() -> None:
    pacemaker = check_order(MRI_BRAIN, PatientFacts(devices=[("Cardiac pacemaker", "Device/d1")]))
    assert [(c.rule, c.severity, c.sources) for c in pacemaker] == [("mri-implant", "block", ("Device/d1",))]
    conditional = check_order(MRI_BRAIN, PatientFacts(devices=["MR-conditional pacemaker"]))
    assert [(c.rule, c.severity) for c in conditional] == [("mri-conditional-implant", "warn")]
    eye = check_order(MRI_BRAIN, PatientFacts(conditions=["Metallic foreign body in left eye"]))
    assert is_blocked(eye)


def test_pregnancy_warns_for_ct_and_is_never_assumed() -> None:
    pregnant = check_order(PLAIN_CT, PatientFacts(pregnant=True, pregnancy_source="Observation/hcg"))
    assert [(c.rule, c.severity, c.sources) for c in pregnant] == [
        ("radiation-pregnancy", "warn", ("Observation/hcg",))
    ]
    assert check_order(PLAIN_CT, PatientFacts(pregnant=None)) == []
    assert check_order(PLAIN_CT, PatientFacts(pregnant=False)) == []


def test_healthy_patient_has_no_contraindication() -> None:
    healthy = PatientFacts(
        conditions=["Seasonal allergic rhinitis"],
        allergies=["Penicillin"],
        medications=["Cetirizine 10 MG"],
        labs={"eGFR": (95, "mL/min/1.73m2", "Observation/e"), "Platelets": (250, "10*3/uL", "Observation/p")},
        pregnant=False,
    )
    for test in (CONTRAST_CT, PLAIN_CT, MRI_BRAIN, GADOLINIUM_MRI, BIOPSY):
        assert check_order(test, healthy) == [], test.name


def test_anticoagulant_warns_for_a_biopsy_only() -> None:
    facts = PatientFacts(medications=[("Apixaban 5 MG Oral Tablet", "MedicationRequest/ap")])
    found = check_order(BIOPSY, facts)
    assert [(c.rule, c.severity, c.sources) for c in found] == [
        ("invasive-anticoagulant", "warn", ("MedicationRequest/ap",))
    ]
    assert check_order(PLAIN_CT, facts) == []


@pytest.mark.parametrize(("value", "unit"), [(32, "10*3/uL"), (32000, "/uL")])
def test_low_platelets_warn_for_a_biopsy(value: float, unit: str) -> None:
    found = check_order(BIOPSY, PatientFacts(labs={"Platelets [#/volume] in Blood": (value, unit, "Observation/p")}))
    assert [(c.rule, c.sources) for c in found] == [("invasive-low-platelets", ("Observation/p",))]


def test_blocks_come_before_warnings() -> None:
    facts = PatientFacts(
        medications=["Metformin 500 MG"], labs={"eGFR": (20, "mL/min/1.73m2", "Observation/e")}, pregnant=True
    )
    severities = [c.severity for c in check_order(CONTRAST_CT, facts)]
    assert severities[0] == "block" and "warn" in severities
    assert severities == sorted(severities, key=lambda s: s != "block")
