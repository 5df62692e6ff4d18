"""The built-in demo cases: present, well-formed, answerable, and not giving their answers away."""

from __future__ import annotations

import pytest

from simulations.cases import CaseNotFoundError, demo_cases, get_demo_case
from simulations.findings import flatten_findings, match_test
from simulations.leaks import leaking_findings, leaks_diagnosis


def test_at_least_six_demo_cases_with_unique_slugs():
    cases = demo_cases()
    assert len(cases) >= 6
    slugs = [c.slug for c in cases]
    assert len(set(slugs)) == len(slugs) and all(slugs)
    assert [c.id for c in cases] == [f"demo:{s}" for s in slugs]
    assert "chest-pain" in slugs  # the Makefile's demo case


@pytest.mark.parametrize("case", demo_cases(), ids=lambda c: c.id)
def test_each_demo_case_is_complete_and_leak_free(case):
    osce = case.raw["OSCE_Examination"]
    assert case.dataset == "demo" and case.source_format == "medqa"
    assert case.correct_diagnosis.strip()
    assert len(osce["Test_Results"]) >= 2
    assert "Vital_Signs" in case.findings
    for key in ("Demographics", "History", "Symptoms", "Past_Medical_History", "Social_History"):
        assert key in osce["Patient_Actor"]
    # Nothing the doctor or patient sees, and no result, names the diagnosis.
    assert not leaks_diagnosis(case, case.objective)
    assert not leaks_diagnosis(case, case.patient_info)
    assert leaking_findings(case) == []


@pytest.mark.parametrize("case", demo_cases(), ids=lambda c: c.id)
def test_every_listed_test_is_found_by_its_own_name(case):
    tests = flatten_findings(case.findings)
    for name in case.findings["tests"]:
        found = match_test(name.replace("_", " "), tests)
        assert found is not None and found.test.path == f"tests.{name}", name


def test_get_demo_case_accepts_both_forms():
    assert get_demo_case("demo:chest-pain") is get_demo_case("chest-pain")
    assert get_demo_case("chest-pain").correct_diagnosis == "Acute inferior myocardial infarction"


def test_unknown_demo_case_lists_valid_names():
    with pytest.raises(CaseNotFoundError) as info:
        get_demo_case("demo:broken-leg")
    message = str(info.value)
    assert "'demo:broken-leg'" in message
    assert all(f"demo:{c.slug}" in message for c in demo_cases())


def test_demo_cases_returns_a_fresh_list():
    first = demo_cases()
    first.clear()
    assert len(demo_cases()) >= 6
