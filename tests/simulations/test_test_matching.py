"""Deterministic matching of test orders against a case's findings, including NEJM paragraphs."""

from __future__ import annotations

import pytest

from simulations.findings import flatten_findings, match_test, name_tokens, parse_findings_text, render_value

FINDINGS = {
    "Vital_Signs": {"Blood_Pressure": "150/90 mmHg", "Heart_Rate": "96 bpm"},
    "Neurological_Examination": {"Cranial_Nerves": "Intact", "Reflexes": "Brisk"},
    "tests": {
        "Complete_Blood_Count": {"WBC": "12,000/µL", "Hemoglobin": "13 g/dL"},
        "Basic_Metabolic_Panel": {"Sodium": "139 mmol/L", "Creatinine": "1.2 mg/dL"},
        "Electrocardiogram": {"Findings": "ST elevation in II, III, aVF"},
        "Cardiac_Enzymes": {"Troponin_I": "5.2 ng/mL"},
        "Urinalysis": {"Protein": "Trace"},
        "Liver_Function_Tests": {"ALT": "40 U/L"},
        "Arterial_Blood_Gas": {"pH": "7.31"},
        "Imaging": {"Chest_X-ray": {"Findings": "Clear"}, "MRI_Brain": {"Findings": "Normal"},
                    "CT_Scan_Thorax_and_Abdomen": {"Findings": "No mass"}},
        "Urine_Culture": "No growth",
    },
}
TESTS = flatten_findings(FINDINGS)


@pytest.mark.parametrize(
    ("order", "path"),
    [
        ("CBC", "tests.Complete_Blood_Count"),
        ("complete blood count", "tests.Complete_Blood_Count"),
        ("Full blood count", "tests.Complete_Blood_Count"),
        ("BMP", "tests.Basic_Metabolic_Panel"),
        ("CMP", "tests.Basic_Metabolic_Panel"),
        ("serum electrolytes", "tests.Basic_Metabolic_Panel"),
        ("ECG", "tests.Electrocardiogram"),
        ("12-lead EKG", "tests.Electrocardiogram"),
        ("troponin", "tests.Cardiac_Enzymes"),
        ("Serum troponin I level", "tests.Cardiac_Enzymes.Troponin_I"),
        ("cardiac enzymes", "tests.Cardiac_Enzymes"),
        ("UA", "tests.Urinalysis"),
        ("urine analysis", "tests.Urinalysis"),
        ("LFTs", "tests.Liver_Function_Tests"),
        ("ABG", "tests.Arterial_Blood_Gas"),
        ("CXR", "tests.Imaging.Chest_X-ray"),
        ("Chest X-Rays", "tests.Imaging.Chest_X-ray"),
        ("chest radiograph", "tests.Imaging.Chest_X-ray"),
        ("MRI of the brain with contrast", "tests.Imaging.MRI_Brain"),
        ("CT chest", "tests.Imaging.CT_Scan_Thorax_and_Abdomen"),
        ("imaging", "tests.Imaging"),
        ("hemoglobin", "tests.Complete_Blood_Count.Hemoglobin"),
        ("creatinine", "tests.Basic_Metabolic_Panel.Creatinine"),
        ("vital signs", "Vital_Signs"),
        ("blood pressure", "Vital_Signs.Blood_Pressure"),
        ("neurologic exam", "Neurological_Examination"),
        ("physical examination", "Physical_Examination_Findings"),
        ("urine culture", "tests.Urine_Culture"),
    ],
)
def test_orders_find_the_listed_test(order, path):
    found = match_test(order, TESTS)
    assert found is not None, order
    assert found.test.path == path


@pytest.mark.parametrize("order", ["chest CT angiogram of the head", "CT head", "blood culture", "lumbar puncture",
                                   "echocardiogram", "tests", "", "please"])
def test_unlisted_orders_match_nothing(order):
    assert match_test(order, TESTS) is None


def test_name_normalisation_is_symmetric():
    assert name_tokens("Chest_X-Ray") == name_tokens("CXR") == name_tokens("chest x rays")
    assert name_tokens("Complete_Blood_Count") == name_tokens("CBC")
    assert "blood" in name_tokens("Blood_Cultures")  # not folded into "lab": cultures must keep their site


def test_generic_keys_are_not_candidates_and_are_folded_into_their_parent():
    paths = [t.path for t in TESTS]
    assert not any(p.endswith(".Findings") for p in paths)
    ecg = next(t for t in TESTS if t.path == "tests.Electrocardiogram")
    assert ecg.render() == "Electrocardiogram: ST elevation in II, III, aVF"


def test_render_value_nested():
    assert render_value({"A_B": {"x": 1, "y": [True, "z"]}, "C": None}) == "A B: (x: 1; y: yes, z); C: "


def test_nejm_paragraph_becomes_named_sections():
    text = (
        "Laboratory testing results: - Peripheral eosinophilia present - Tests for cryptococcus: Negative - "
        "Tests for HIV (human immunodeficiency virus): Negative Imaging results: - CT scan of the neck: "
        "Hyperattenuating cervical lymphadenopathy"
    )
    tree = parse_findings_text(text)
    assert tree["Laboratory testing results"]["Tests for cryptococcus"] == "Negative"
    assert tree["Imaging results"] == {"CT scan of the neck": "Hyperattenuating cervical lymphadenopathy"}
    found = match_test("CT neck", flatten_findings(text))
    assert found is not None and found.test.path == "Imaging results.CT scan of the neck"


def test_nejm_numbered_list_with_preamble():
    text = ("The information extracted from the case report includes: 1. Dermoscopy findings: Pinpoint macules. "
            "2. Skin biopsy results: Banana-shaped bodies in the dermis.")
    assert parse_findings_text(text) == {"Dermoscopy findings": "Pinpoint macules.",
                                         "Skin biopsy results": "Banana-shaped bodies in the dermis."}
    tests = flatten_findings(text)
    assert match_test("skin biopsy", tests).test.path == "Skin biopsy results"
    # A paragraph has no separate physical-exam section to offer.
    assert match_test("physical exam", tests) is None


GUARDED = flatten_findings({
    "Skin_Examination": {"Inspection": "Erythematous plaques"},
    "Cardiovascular_Examination": {"Auscultation": "Normal S1 S2"},
    "Obstetric_Examination": {"Fetal_Heart_Rate": "140 bpm"},
    "tests": {
        "Urinalysis": {"Glucose": "Negative", "Blood": "Trace"},
        "Blood_Tests": {"Glucose": "98 mg/dL"},
        "Stool_Test": {"Culture": "No pathogens"},
    },
})


@pytest.mark.parametrize(
    ("order", "path"),
    [
        ("blood glucose", "tests.Blood_Tests.Glucose"),
        ("urine glucose", "tests.Urinalysis.Glucose"),
        ("stool culture", "tests.Stool_Test.Culture"),
        ("heart exam", "Cardiovascular_Examination"),
        ("skin exam", "Skin_Examination"),
        ("blood glucose level", "tests.Blood_Tests.Glucose"),
    ],
)
def test_specimen_and_kind_guards_allow(order, path):
    found = match_test(order, GUARDED)
    assert found is not None and found.test.path == path


@pytest.mark.parametrize("order", ["urine culture", "blood culture", "skin biopsy", "CSF glucose"])
def test_specimen_and_kind_guards_refuse(order):
    # Each shares a word with a listed result (Culture, Blood, Skin, Glucose) but names another specimen or kind.
    assert match_test(order, GUARDED) is None
