"""The case loader against every schema variation the AgentClinic files show, and against broken lines."""

from __future__ import annotations

import json

import pytest

from simulations.cases import (
    NEJM_OBJECTIVE,
    CaseFormatError,
    CaseNotFoundError,
    dataset_name,
    demo_cases,
    load_case,
    load_cases,
)
from simulations.leaks import leaking_findings


def test_medqa_fields_and_stable_id(tmp_path, medqa_record, write_lines):
    records = [medqa_record(), medqa_record(Correct_Diagnosis="Septic arthritis")]
    path = write_lines(tmp_path / "agentclinic_medqa.jsonl", records)
    load = load_cases(path)
    assert [c.id for c in load.cases] == ["medqa:0000", "medqa:0001"]
    case = load.cases[1]
    assert case.dataset == "medqa" and case.source_format == "medqa"
    assert case.objective == "Assess and diagnose the patient presenting with joint pain."
    assert case.correct_diagnosis == "Septic arthritis"
    # The measurement data is the exam with the test results merged in under "tests", as upstream.
    assert case.findings["Vital_Signs"]["Heart_Rate"] == "88 bpm"
    assert case.findings["tests"]["Serum_Uric_Acid"] == "9.1 mg/dL"
    assert "52-year-old man" in case.patient_info and "Painful big toe" in case.patient_info
    assert "Septic arthritis" not in case.patient_info
    assert case.options == [] and case.image_url is None
    assert case.raw["OSCE_Examination"]["Correct_Diagnosis"] == "Septic arthritis"


def test_lists_and_dicts_where_text_is_usual(tmp_path, medqa_record, write_lines):
    record = medqa_record(
        Objective_for_Doctor=["Assess the patient.", "Make a diagnosis."],
        Correct_Diagnosis=["Gout"],
        Patient_Actor={
            "Demographics": "52-year-old man",
            "History": "Toe pain.",
            "Symptoms": {"Primary_Symptom": "Toe pain", "Secondary_Symptoms": ["Swelling"]},
            "Past_Medical_History": ["Hypertension", "Kidney stones"],
            "Social_History": {"Alcohol": "4 beers a night", "Smoking": "Never"},
            "Review_of_Systems": {"Fever": "None", "Rash": "None"},
            "Current_Medications": ["Hydrochlorothiazide 25 mg"],
        },
    )
    case = load_cases(write_lines(tmp_path / "x.jsonl", [record])).cases[0]
    assert case.objective == "Assess the patient.; Make a diagnosis."
    assert case.correct_diagnosis == "Gout"
    for fragment in ("Hypertension, Kidney stones", "Alcohol: 4 beers a night", "Fever: None", "Hydrochlorothiazide"):
        assert fragment in case.patient_info


def test_text_or_missing_sections_are_coerced(tmp_path, medqa_record, write_lines):
    record = medqa_record(Physical_Examination_Findings="Tender first MTP joint.", Test_Results=None)
    case = load_cases(write_lines(tmp_path / "x.jsonl", [record])).cases[0]
    assert case.findings == {"Findings": "Tender first MTP joint.", "tests": {}}


def test_extra_keys_are_kept_in_raw_and_ignored(tmp_path, medqa_record, write_lines, nejm_record):
    record = medqa_record(Management_and_Follow_Up="Colchicine")
    record["source"] = "extended"
    nejm = nejm_record(type=["dermatology", "hist/path"], extra_field={"a": 1})
    load = load_cases(write_lines(tmp_path / "mixed.jsonl", [record, nejm]))
    assert [c.source_format for c in load.cases] == ["medqa", "nejm"]
    assert load.cases[0].raw["source"] == "extended"
    assert load.cases[1].image_types == ["dermatology", "hist/path"]


def test_no_trailing_newline_blank_lines_crlf_and_bom(tmp_path, medqa_record, write_lines):
    records = [medqa_record(Correct_Diagnosis=f"Diagnosis {i}") for i in range(3)]
    plain = load_cases(write_lines(tmp_path / "plain.jsonl", records))
    variants = {
        "no_newline": write_lines(tmp_path / "a.jsonl", records, trailing=False),
        "blank_lines": write_lines(tmp_path / "b.jsonl", ["", records[0], "   ", "", records[1], records[2], "", "\t"]),
        "crlf": write_lines(tmp_path / "c.jsonl", records, newline="\r\n"),
        "bom": write_lines(tmp_path / "d.jsonl", records, bom=True),
        "all": write_lines(tmp_path / "e.jsonl", [records[0], "", records[1], records[2]], newline="\r\n",
                           trailing=False, bom=True),
    }
    for name, path in variants.items():
        load = load_cases(path)
        assert [c.correct_diagnosis for c in load.cases] == ["Diagnosis 0", "Diagnosis 1", "Diagnosis 2"], name
        # Blank lines do not renumber: ids are positions among non-blank lines.
        assert [c.id.split(":")[1] for c in load.cases] == ["0000", "0001", "0002"], name
        assert all("\r" not in c.patient_info and "\ufeff" not in c.objective for c in load.cases), name
        assert [c.patient_info for c in load.cases] == [c.patient_info for c in plain.cases], name


def test_malformed_json_names_file_and_line(tmp_path, medqa_record, write_lines):
    truncated = '{"OSCE_Examination": {"Objective'
    path = write_lines(tmp_path / "broken.jsonl", [medqa_record(), "", truncated, medqa_record()])
    with pytest.raises(CaseFormatError) as info:
        load_cases(path)
    message = str(info.value)
    assert str(path) in message and "line 3" in message and "invalid JSON" in message
    assert info.value.problem.line == 3


@pytest.mark.parametrize(
    ("override", "field", "reason"),
    [
        ({"Correct_Diagnosis": None}, "OSCE_Examination.Correct_Diagnosis", "missing required field"),
        ({"Objective_for_Doctor": None}, "OSCE_Examination.Objective_for_Doctor", "missing required field"),
        ({"Correct_Diagnosis": 42}, "OSCE_Examination.Correct_Diagnosis", "expected text, got a number"),
        ({"Correct_Diagnosis": {"a": "b"}}, "OSCE_Examination.Correct_Diagnosis", "expected text, got an object"),
        ({"Correct_Diagnosis": "   "}, "OSCE_Examination.Correct_Diagnosis", "is empty"),
        ({"Patient_Actor": 7}, "OSCE_Examination.Patient_Actor", "expected an object or text"),
        ({"Physical_Examination_Findings": None}, "OSCE_Examination.Physical_Examination_Findings", "missing"),
        ({"Test_Results": 3.5}, "OSCE_Examination.Test_Results", "expected an object"),
    ],
)
def test_missing_or_wrong_field_is_named(tmp_path, medqa_record, write_lines, override, field, reason):
    path = write_lines(tmp_path / "bad.jsonl", [medqa_record(), medqa_record(**override)])
    with pytest.raises(CaseFormatError) as info:
        load_cases(path)
    assert info.value.problem.line == 2
    assert info.value.problem.field == field
    assert reason in str(info.value) and f"{path}, line 2" in str(info.value)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[1, 2]", "expected a JSON object, got a list"),
        ('{"something": "else"}', "unrecognised case schema"),
        ('{"OSCE_Examination": "text"}', "expected an object, got text"),
    ],
)
def test_wrong_shapes(tmp_path, write_lines, line, reason):
    with pytest.raises(CaseFormatError, match=reason):
        load_cases(write_lines(tmp_path / "bad.jsonl", [line]))


def test_invalid_utf8_is_a_line_problem(tmp_path, medqa_record):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(medqa_record()).encode() + b"\n" + b'{"x": "caf\xe9"}\n')
    with pytest.raises(CaseFormatError, match="line 2: not valid UTF-8"):
        load_cases(path)


def test_skip_bad_collects_problems_and_keeps_ids_stable(tmp_path, medqa_record, write_lines, nejm_record):
    path = write_lines(tmp_path / "agentclinic_medqa.jsonl", [
        medqa_record(Correct_Diagnosis="First"),
        "not json",
        medqa_record(Correct_Diagnosis=None),
        medqa_record(Correct_Diagnosis="Fourth"),
        nejm_record(answers=[{"text": "A", "correct": True}, {"text": "B", "correct": True}]),
    ])
    with pytest.raises(CaseFormatError):
        load_cases(path)
    load = load_cases(path, skip_bad=True)
    assert [c.correct_diagnosis for c in load.cases] == ["First", "Fourth"]
    assert [c.id for c in load.cases] == ["medqa:0000", "medqa:0003"]
    assert [(p.line, p.field) for p in load.problems] == [
        (2, None), (3, "OSCE_Examination.Correct_Diagnosis"), (5, "answers")]
    assert "expected exactly one correct option, found 2" in str(load.problems[2])


def test_nejm_correct_option_and_fixed_objective(tmp_path, nejm_record, write_lines):
    case = load_cases(write_lines(tmp_path / "agentclinic_nejm.jsonl", [nejm_record()])).cases[0]
    assert case.id == "nejm:0000" and case.source_format == "nejm"
    assert case.correct_diagnosis == "Necrobiosis lipoidica"
    assert case.options == ["Erythema nodosum", "Necrobiosis lipoidica", "Pretibial myxedema"]
    # The doctor sees only the fixed question: never the vignette or the options.
    assert case.objective == NEJM_OBJECTIVE
    assert case.image_url == "https://example.org/image.jpg"
    assert isinstance(case.findings, str) and "Glucose" in case.findings
    assert case.patient_info.startswith("For your role as a patient")


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([{"text": "A", "correct": False}], "found 0"),
        ([], "non-empty list"),
        ("A", "non-empty list"),
        ([{"text": "A", "correct": "maybe"}], r"answers\[0\].correct"),
        ([{"correct": True}], r"answers\[0\]"),
    ],
)
def test_nejm_bad_answers(tmp_path, nejm_record, write_lines, answers, message):
    with pytest.raises(CaseFormatError, match=message):
        load_cases(write_lines(tmp_path / "n.jsonl", [nejm_record(answers=answers)]))


def test_nejm_string_flags_are_coerced(tmp_path, nejm_record, write_lines):
    record = nejm_record(answers=[{"text": "A", "correct": "false"}, {"text": "B", "correct": "true"}], type="xray")
    case = load_cases(write_lines(tmp_path / "n.jsonl", [record])).cases[0]
    assert case.correct_diagnosis == "B" and case.image_types == ["xray"]


def test_load_case_by_index_and_out_of_range(tmp_path, medqa_record, write_lines):
    records = [medqa_record(Correct_Diagnosis=f"D{i}") for i in range(3)]
    path = write_lines(tmp_path / "agentclinic_medqa.jsonl", records)
    assert load_case(path, 2).correct_diagnosis == "D2"
    for index in (3, -1):
        with pytest.raises(CaseNotFoundError, match=r"has 3 cases \(valid indexes are 0\.\.2\)"):
            load_case(path, index)


def test_duplicate_slugs_are_rejected(tmp_path, medqa_record, write_lines):
    a, b = medqa_record(), medqa_record()
    a["slug"] = b["slug"] = "Same Case"
    with pytest.raises(CaseFormatError, match="line 2: slug: duplicate case id 'x:same-case'"):
        load_cases(write_lines(tmp_path / "x.jsonl", [a, b]))


@pytest.mark.parametrize(
    ("name", "dataset"),
    [
        ("agentclinic_medqa.jsonl", "medqa"),
        ("agentclinic_nejm_extended.jsonl", "nejm_extended"),
        ("mine.jsonl", "mine"),
    ],
)
def test_dataset_name_from_file_stem(name, dataset):
    assert dataset_name(f"/some/dir/{name}") == dataset


def test_real_medqa_file(agentclinic_file):
    load = load_cases(agentclinic_file("agentclinic_medqa.jsonl"))
    assert len(load.cases) == 107 and load.problems == []
    assert load.cases[0].id == "medqa:0000" and load.cases[0].correct_diagnosis == "Myasthenia gravis"
    assert len({c.id for c in load.cases}) == 107
    assert all(isinstance(c.findings, dict) and "tests" in c.findings for c in load.cases)
    # SOURCE.md counts 14 leaking cases; folding punctuation also finds medqa:0013, whose rectal biopsy reads
    # "consistent with Hirschsprung’s disease" (a curly apostrophe that an ASCII-escaped search misses).
    leaking = [c.id for c in load.cases if leaking_findings(c)]
    assert len(leaking) == 15 and "medqa:0013" in leaking


def test_real_nejm_file(agentclinic_file):
    load = load_cases(agentclinic_file("agentclinic_nejm.jsonl"))
    assert len(load.cases) == 15 and load.problems == []
    first = load.cases[0]
    assert first.correct_diagnosis == "Exogenous ochronosis" and first.objective == NEJM_OBJECTIVE
    assert all(len(c.options) == 5 and c.correct_diagnosis in c.options for c in load.cases)
    assert all(c.image_url and c.image_url.startswith("https://csvc.nejm.org/") for c in load.cases)


def test_fhir_patient_id_is_read_and_checked(tmp_path, medqa_record, write_lines):
    good = write_lines(tmp_path / "good.jsonl", [{**medqa_record(), "fhir_patient_id": "pat-01.a"}])
    assert load_cases(good).cases[0].patient_id == "pat-01.a"
    assert load_cases(write_lines(tmp_path / "none.jsonl", [medqa_record()])).cases[0].patient_id is None
    bad = write_lines(tmp_path / "bad.jsonl", [{**medqa_record(), "fhir_patient_id": "1/../../Patient?_id=x"}])
    with pytest.raises(CaseFormatError, match=r"line 1: fhir_patient_id: expected a FHIR id"):
        load_cases(bad)


def test_every_demo_case_names_its_demo_patient():
    assert {case.patient_id for case in demo_cases()} == {f"demo-{case.slug}" for case in demo_cases()}
