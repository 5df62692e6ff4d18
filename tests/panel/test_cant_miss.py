"""Can't-miss diagnoses by complaint, kept in the differential until a finding excludes them."""

from __future__ import annotations

import pytest

from agents.panel.cant_miss import (
    CantMiss,
    cant_miss_for,
    complaints_in,
    excluding_finding,
    keep_in_differential,
    load_cant_miss_table,
    open_cant_miss,
    parse_cant_miss_table,
)


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
