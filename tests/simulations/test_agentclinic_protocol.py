"""The agentclinic protocol's clinic and moderator, and a whole consultation through the real graph."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver

from agents.doctor.agentclinic import FINAL_NUDGE, NO_DIAGNOSIS, AgentClinicDoctor
from graphs.consultation import build_consultation_graph, recursion_limit_for
from graphs.environment import Environment, Observation
from simulations.agentclinic import (
    MEASUREMENT_HISTORY_OPEN,
    MEASUREMENT_REQUEST_OPEN,
    PATIENT_CONTINUE,
    PATIENT_HISTORY_OPEN,
    PATIENT_QUESTION_OPEN,
    AgentClinicMeasurement,
    AgentClinicModerator,
    AgentClinicPatient,
    agentclinic_patient_biases,
    build_agentclinic_clinic,
    measurement_history,
    patient_history,
)
from simulations.cases import load_case

COGNITIVE = ("recency", "frequency", "false_consensus", "self_diagnosis")
IMPLICIT = ("gender", "race", "sexual_orientation", "cultural", "education", "religion", "socioeconomic")
Q1, A1 = "What brings you in?", "My big toe is red and swollen."
T1, R1 = "I want to check something. REQUEST TEST: Serum_Uric_Acid", "RESULTS: Serum uric acid 9.1 mg/dL"
Q2 = "Do you drink alcohol?"
DIALOGUE = [
    {"turn": 1, "role": "doctor", "text": Q1, "action": "ask"},
    {"turn": 1, "role": "patient", "text": A1, "action": None},
    {"turn": 2, "role": "doctor", "text": T1, "action": "test"},
    {"turn": 2, "role": "measurement", "text": R1, "action": None},
]


def _user(messages: list) -> str:
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage]
    return messages[1].content


def test_patient_prompt_is_upstreams_with_the_script_as_python_str(gout_case, scripted):
    prompt = AgentClinicPatient(scripted(), gout_case).system_prompt()
    assert "patient" in prompt and "1-3 sentences" in prompt
    assert str(gout_case.raw["OSCE_Examination"]["Patient_Actor"]) + "." in prompt
    assert "{'Demographics': '52-year-old man'" in prompt and "Gout" not in prompt


def test_nejm_patient_sees_the_text(tmp_path, nejm_record, write_lines, scripted):
    case = load_case(write_lines(tmp_path / "nejm.jsonl", [nejm_record()]), 0)
    patient = AgentClinicPatient(scripted(), case).system_prompt()
    assert "you are a 40-year-old woman with an itchy rash on your shins." in patient
    exam = AgentClinicMeasurement(scripted(), case).system_prompt()
    assert "Skin biopsy: necrobiosis" in exam


def test_histories_are_rebuilt_from_the_dialogue_with_upstreams_cross_feeding():
    assert patient_history(DIALOGUE) == f"{Q1}\n\n{A1}\n\n{R1}\n\n"
    assert measurement_history(DIALOGUE) == f"{A1}\n\n{T1}\n\n{R1}\n\n"
    # The doctor entry being answered right now is not part of its own history.
    pending = [*DIALOGUE, {"turn": 3, "role": "doctor", "text": Q2, "action": "ask"}]
    assert patient_history(pending) == patient_history(DIALOGUE)
    assert measurement_history(pending) == measurement_history(DIALOGUE)
    assert patient_history([]) == measurement_history([]) == ""


def test_patient_user_message_is_one_flattened_string(gout_case, scripted):
    patient = AgentClinicPatient(scripted(), gout_case)
    pending = [*DIALOGUE, {"turn": 3, "role": "doctor", "text": Q2, "action": "ask"}]
    expected = f"{PATIENT_HISTORY_OPEN}{Q1}\n\n{A1}\n\n{R1}\n\n{PATIENT_QUESTION_OPEN}{Q2}{PATIENT_CONTINUE}"
    assert _user(patient.messages(Q2, pending)) == expected
    assert expected.endswith("\nPatient: ")


def test_measurement_prompt_says_results_and_normal_readings(gout_case, scripted):
    measurement = AgentClinicMeasurement(scripted(), gout_case)
    prompt = measurement.system_prompt()
    assert '"RESULTS: [results here]"' in prompt and "NORMAL READINGS" in prompt
    assert str(gout_case.findings) + "." in prompt and "'tests': {'Complete_Blood_Count'" in prompt
    request = "REQUEST TEST: Chest_X-Ray"
    expected = f"{MEASUREMENT_HISTORY_OPEN}{A1}\n\n{T1}\n\n{R1}\n\n{MEASUREMENT_REQUEST_OPEN}{request}"
    assert _user(measurement.messages(request, DIALOGUE)) == expected


async def test_every_request_listed_or_not_goes_to_the_model(gout_case, scripted):
    model = scripted("RESULTS: NORMAL READINGS", "RESULTS:\n  brain   normal")
    measurement = AgentClinicMeasurement(model, gout_case, max_new_tokens=99)
    listed = await measurement.answer("REQUEST TEST: Serum_Uric_Acid", DIALOGUE)
    assert listed.text == "RESULTS: NORMAL READINGS"  # the model's word, though the case lists 9.1 mg/dL
    assert [(p.request, p.path, p.method) for p in listed.parts] == [("Serum_Uric_Acid", None, "model")]
    assert listed.available and listed.usage.calls == 1
    unlisted = await measurement.answer("REQUEST TEST: Lumbar_Puncture")
    assert unlisted.text == "RESULTS: brain normal"
    assert len(model.seen) == 2 and model.kwargs_seen[0] == {"max_new_tokens": 99}


async def test_strict_mode_answers_from_the_case_without_a_model(gout_case, scripted):
    clinic = build_agentclinic_clinic(gout_case, patient_model=scripted(), measurement_model=None, mode="strict")
    assert clinic.mode == "agentclinic/strict" and clinic.measurement.mode == "strict"
    listed = await clinic.respond("test", "Let me check. REQUEST TEST: Serum_Uric_Acid.", DIALOGUE)
    assert "9.1 mg/dL" in listed.text and listed.available and listed.calls == 0
    missing = await clinic.respond("test", "REQUEST TEST: Lumbar_Puncture", DIALOGUE)
    assert missing.text == "RESULTS: Lumbar_Puncture: not available" and not missing.available
    with pytest.raises(ValueError, match="needs a chat model"):
        AgentClinicMeasurement(None, gout_case)


async def test_clinic_routes_and_reports_usage_and_leaks(gout_case, scripted):
    patient_model = scripted("  It   hurts\nso much. ")
    measurement_model = scripted("RESULTS: Synovial fluid: crystals consistent with gout")
    clinic = build_agentclinic_clinic(gout_case, patient_model=patient_model, measurement_model=measurement_model)
    assert isinstance(clinic, Environment) and clinic.mode == "agentclinic/agentclinic"
    assert clinic.opening() == gout_case.objective
    pending = [*DIALOGUE, {"turn": 3, "role": "doctor", "text": Q2, "action": "ask"}]
    answer = await clinic.respond("ask", Q2, pending)
    assert answer == Observation(text="It hurts so much.", speaker="patient", source="patient", available=True,
                                 model="scripted:test", input_tokens=101, output_tokens=7, seconds=0.25, calls=1)
    assert patient_model.kwargs_seen == [{"max_new_tokens": 200}]
    result = await clinic.respond("test", "REQUEST TEST: Joint_Aspiration", DIALOGUE)
    assert result.speaker == "measurement" and result.source == "test:Joint_Aspiration"
    assert clinic.leaks == ["test:Joint_Aspiration"]
    with pytest.raises(ValueError, match="answers 'ask' or 'test'"):
        await clinic.respond("record", "x", [])  # type: ignore[arg-type]


def test_the_eleven_patient_biases_and_the_prompt(gout_case, scripted):
    biases = agentclinic_patient_biases()
    assert set(biases) == set(COGNITIVE) | set(IMPLICIT) and len(biases) == 11
    for name in COGNITIVE:
        assert "cancer" in biases[name], name
    for name in IMPLICIT:
        assert "the doctor" in biases[name] and "cancer" not in biases[name], name
    assert "medical school" in biases["education"]
    plain = AgentClinicPatient(scripted(), gout_case).system_prompt()
    for name, sentence in biases.items():
        prompt = AgentClinicPatient(scripted(), gout_case, name).system_prompt()
        assert sentence not in plain
        assert prompt.index("1-3 sentences") < prompt.index(sentence) < prompt.index("{'Demographics'")
    with pytest.raises(ValueError, match="unknown patient bias 'status_quo'.*self_diagnosis"):
        AgentClinicPatient(scripted(), gout_case, "status_quo")


@pytest.mark.parametrize(
    ("answer", "correct", "upstream", "method"),
    [("Yes.", True, False, "model"), ("yes", True, True, "model"), ("Yes", True, True, "model"),
     ("No", False, False, "model"), ("I cannot tell", None, False, "unjudged"), ("banana", None, False, "unjudged")],
)
async def test_moderator_reads_robustly_and_records_upstreams_rule(scripted, answer, correct, upstream, method):
    model = scripted(answer)
    message = "I am confident. DIAGNOSIS READY: Gouty arthritis"
    result = await AgentClinicModerator(model).verdict("Gout", message)
    assert (result.verdict.correct, result.upstream_correct, result.verdict.method) == (correct, upstream, method)
    assert result.verdict.raw == answer and result.verdict.calls == 1 and result.verdict.input_tokens == 101
    system, user = model.seen[0]
    assert "Yes or No" in system.content
    assert "Gout" in user.content and message in user.content and model.kwargs_seen == [{"max_new_tokens": 16}]


async def test_moderator_without_a_diagnosis_tag_makes_no_call(scripted):
    model = scripted()
    result = await AgentClinicModerator(model).verdict("Gout", "REQUEST TEST: MRI")
    assert (result.verdict.correct, result.verdict.method, result.upstream_correct) == (False, "no_diagnosis", False)
    assert model.seen == []


async def _consult(doctor_model, clinic, max_turns: int) -> dict:
    graph = build_consultation_graph(AgentClinicDoctor(doctor_model), clinic, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": recursion_limit_for(max_turns)}
    return await graph.ainvoke({"case_id": "c", "objective": clinic.opening(), "max_turns": max_turns}, config)


async def test_a_whole_consultation_asks_tests_and_diagnoses_through_the_graph(gout_case, scripted):
    doctor_model = scripted(Q1, T1, "Thank you. DIAGNOSIS READY: Gout")
    patient_model = scripted(A1)
    measurement_model = scripted(R1)
    clinic = build_agentclinic_clinic(gout_case, patient_model=patient_model, measurement_model=measurement_model)
    final = await _consult(doctor_model, clinic, 20)
    assert (final["final_diagnosis"], final["ended_by"]) == ("Gout", "doctor")
    assert [(e["role"], e["text"]) for e in final["dialogue"]] == [
        ("doctor", Q1), ("patient", A1), ("doctor", T1), ("measurement", R1), ("doctor", "Gout")]
    assert final["dialogue"][-1]["reply"] == "Thank you. DIAGNOSIS READY: Gout"
    assert [{k: t[k] for k in ("turn", "name", "available", "canonical", "matched")} for t in final["tests_ordered"]] \
        == [{"turn": 2, "name": T1, "available": True, "canonical": "uric acid", "matched": True}]
    # The third doctor call got one string holding both earlier replies and answers, and "asked 2".
    system, user = doctor_model.seen[2]
    assert "you have asked 2" in system.content
    assert user.content.index(Q1) < user.content.index(A1) < user.content.index(T1) < user.content.index(R1)
    # Cross-feeding: the measurement reader saw the patient's answer; the patient had no history yet.
    assert f"{MEASUREMENT_HISTORY_OPEN}{A1}\n\n{MEASUREMENT_REQUEST_OPEN}{T1}" == measurement_model.seen[0][1].content
    assert patient_model.seen[0][1].content == f"{PATIENT_HISTORY_OPEN}{PATIENT_QUESTION_OPEN}{Q1}{PATIENT_CONTINUE}"
    verdict = await AgentClinicModerator(scripted("Yes")).verdict(gout_case.correct_diagnosis,
                                                                  final["dialogue"][-1]["reply"])
    assert verdict.verdict.correct and verdict.upstream_correct


async def test_a_doctor_that_never_diagnoses_ends_with_no_diagnosis(gout_case, scripted):
    doctor_model = scripted("Tell me more.", "REQUEST TEST: MRI_Brain")
    clinic = build_agentclinic_clinic(gout_case, patient_model=scripted("It hurts."), measurement_model=scripted())
    final = await _consult(doctor_model, clinic, 2)
    assert (final["final_diagnosis"], final["ended_by"]) == (NO_DIAGNOSIS, "turn_budget")
    assert [e["role"] for e in final["dialogue"]] == ["doctor", "patient", "doctor"]
    assert FINAL_NUDGE in doctor_model.seen[1][1].content and FINAL_NUDGE not in doctor_model.seen[0][1].content
    verdict = await AgentClinicModerator(scripted()).verdict("Gout", final["dialogue"][-1]["reply"])
    assert verdict.verdict.method == "no_diagnosis"
