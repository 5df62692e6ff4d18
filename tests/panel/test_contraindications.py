"""Contraindications of an ordered test against what is known about the patient."""

from __future__ import annotations

import pytest

from agents.panel.contraindications import Lab as LabValue
from agents.panel.contraindications import PatientFacts, TestTraits, check_order, creatinine_mg_dl, is_blocked

CONTRAST_CT = TestTraits("CT abdomen and pelvis with contrast", uses_contrast="iodinated", ionising_radiation=True)
PLAIN_CT = TestTraits("CT head without contrast", ionising_radiation=True)
MRI_BRAIN = TestTraits("MRI brain", mri=True)
GADOLINIUM_MRI = TestTraits("MRI liver with gadolinium", uses_contrast="gadolinium", mri=True)
BIOPSY = TestTraits("Liver biopsy", invasive=True)


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
