"""The agentclinic protocol's doctor: upstream's prompt, flattened user string, tag routing and turn rules."""

from __future__ import annotations

import re

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agents.doctor import AgentClinicDoctor, Exchange, agentclinic_doctor_biases, agentclinic_doctor_messages
from agents.doctor.agentclinic import (
    CONTINUE,
    EMPTY_REPLY,
    FINAL_NUDGE,
    HISTORY_OPEN,
    LATEST_OPEN,
    NO_DIAGNOSIS,
    diagnosis_text,
    has_diagnosis_tag,
    requested_test,
    route,
)
from tests.conftest import REPO_ROOT
from tests.doctor.fakes import message_with_metadata, scripted

OBJECTIVE = "Assess and diagnose the patient presenting with a painful big toe."
REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "agentclinic.md"
COGNITIVE = ("recency", "frequency", "false_consensus", "confirmation", "status_quo")
IMPLICIT = ("gender", "race", "sexual_orientation", "cultural", "education", "religion", "socioeconomic")
EXCHANGES = [
    Exchange(reply="Where does it hurt?", answer="My big toe.", answered_by="patient"),
    Exchange(reply="REQUEST TEST: Serum_Uric_Acid", answer="RESULTS: 9.1 mg/dL", answered_by="measurement"),
]


def _user(messages: list) -> str:
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage]
    return messages[1].content


def test_system_prompt_states_the_budget_the_questions_asked_and_the_tags() -> None:
    first = agentclinic_doctor_messages(OBJECTIVE, [], 1, 20)[0].content
    third = agentclinic_doctor_messages(OBJECTIVE, EXCHANGES, 3, 20)[0].content
    assert "may ask 20 questions" in first and "you have asked 0" in first
    assert "you have asked 2" in third and "you have asked 0" not in third
    for prompt in (first, third):
        assert '"REQUEST TEST: [test]"' in prompt and '"REQUEST TEST: Chest_X-Ray"' in prompt
        assert '"DIAGNOSIS READY: [diagnosis here]"' in prompt
        assert "1-3 sentences" in prompt and f"{OBJECTIVE}." in prompt
        assert FINAL_NUDGE.strip() not in prompt


def test_the_user_message_is_one_string_flattening_the_whole_dialogue() -> None:
    assert _user(agentclinic_doctor_messages(OBJECTIVE, [], 1, 20)) == f"{HISTORY_OPEN}{LATEST_OPEN}{CONTINUE}"
    # Call 3: each earlier call's observation (empty for call 1) and reply, then the answer to call 2.
    third = _user(agentclinic_doctor_messages(OBJECTIVE, EXCHANGES, 3, 20))
    history = "\n\nWhere does it hurt?\n\nMy big toe.\n\nREQUEST TEST: Serum_Uric_Acid\n\n"
    assert third == f"{HISTORY_OPEN}{history}{LATEST_OPEN}RESULTS: 9.1 mg/dL{CONTINUE}"
    assert third.endswith("\nDoctor: ")
    second = _user(agentclinic_doctor_messages(OBJECTIVE, EXCHANGES[:1], 2, 20))
    assert second == f"{HISTORY_OPEN}\n\nWhere does it hurt?\n\n{LATEST_OPEN}My big toe.{CONTINUE}"


def test_the_final_turn_nudge_sits_in_the_last_observation_of_the_final_turn_only() -> None:
    for turn in (1, 2):
        assert FINAL_NUDGE not in _user(agentclinic_doctor_messages(OBJECTIVE, EXCHANGES[: turn - 1], turn, 3))
    final = _user(agentclinic_doctor_messages(OBJECTIVE, EXCHANGES, 3, 3))
    assert final.endswith(f"{LATEST_OPEN}RESULTS: 9.1 mg/dL{FINAL_NUDGE}{CONTINUE}")
    assert final.count(FINAL_NUDGE) == 1
    alone = _user(agentclinic_doctor_messages(OBJECTIVE, [], 1, 1))
    assert alone == f"{HISTORY_OPEN}{LATEST_OPEN}{FINAL_NUDGE}{CONTINUE}"


def test_routing_follows_upstream() -> None:
    assert route("REQUEST TEST: CBC. DIAGNOSIS READY: Gout") == "diagnose"
    assert route("I would like an X-ray. REQUEST TEST: Chest_X-Ray") == "test"
    assert route("How long has it hurt?") == "ask"
    assert route("diagnosis ready: gout") == "ask"  # upstream matches the tags case-sensitively
    assert has_diagnosis_tag("So: DIAGNOSIS READY: Gout") and not has_diagnosis_tag("Diagnosis: gout")
    assert diagnosis_text("I am sure now. DIAGNOSIS READY: [Gout].") == "Gout"
    assert diagnosis_text("DIAGNOSIS READY: Acute gouty arthritis") == "Acute gouty arthritis"
    assert diagnosis_text("DIAGNOSIS READY:") == "DIAGNOSIS READY:"
    assert requested_test("Let us check. REQUEST TEST: [Serum_Uric_Acid]. Thanks.") == "Serum_Uric_Acid"
    assert requested_test("Chest X-ray") == "Chest X-ray"


async def test_decide_sends_the_flattened_prompt_and_routes_the_collapsed_reply() -> None:
    model = scripted("How long\n\nhas   it hurt?", "Let me see.\nREQUEST TEST: Serum_Uric_Acid",
                     "REQUEST TEST: MRI\nDIAGNOSIS READY: Gout")
    doctor = AgentClinicDoctor(model)
    ask = await doctor.decide(OBJECTIVE, [], 1, 20)
    assert (ask.decision.action, ask.decision.text, ask.reply) == ("ask", "How long has it hurt?", "How long has it hurt?")
    assert (ask.calls, ask.forced, ask.degraded, ask.error) == (1, False, False, None)
    test = await doctor.decide(OBJECTIVE, EXCHANGES[:1], 2, 20)
    assert test.decision.action == "test"
    assert test.decision.text == test.reply == "Let me see. REQUEST TEST: Serum_Uric_Acid"
    diagnose = await doctor.decide(OBJECTIVE, EXCHANGES, 3, 20)
    assert (diagnose.decision.action, diagnose.decision.text, diagnose.forced) == ("diagnose", "Gout", False)
    assert diagnose.reply == "REQUEST TEST: MRI DIAGNOSIS READY: Gout"
    assert [kwargs for _, kwargs in model.calls] == [{"max_new_tokens": 200}] * 3
    assert model.calls[2][0] == agentclinic_doctor_messages(OBJECTIVE, EXCHANGES, 3, 20)


async def test_no_diagnosis_by_the_final_turn_is_no_diagnosis_not_a_forced_guess() -> None:
    turn = await AgentClinicDoctor(scripted("REQUEST TEST: MRI")).decide(OBJECTIVE, EXCHANGES, 3, 3)
    assert (turn.decision.action, turn.decision.text, turn.forced) == ("diagnose", NO_DIAGNOSIS, True)
    assert turn.reply == "REQUEST TEST: MRI"
    tagged = await AgentClinicDoctor(scripted("DIAGNOSIS READY: Gout")).decide(OBJECTIVE, EXCHANGES, 3, 3)
    assert (tagged.decision.text, tagged.forced) == ("Gout", False)


async def test_empty_reply_is_degraded_and_model_errors_propagate() -> None:
    empty = await AgentClinicDoctor(scripted("  \n ")).decide(OBJECTIVE, [], 1, 20)
    assert (empty.decision.action, empty.decision.text, empty.reply, empty.degraded) == ("ask", EMPTY_REPLY,
                                                                                           EMPTY_REPLY, True)
    with pytest.raises(ConnectionError, match="down"):
        await AgentClinicDoctor(scripted(ConnectionError("down"))).decide(OBJECTIVE, [], 1, 20)


async def test_usage_and_thinking_are_read_from_the_answer() -> None:
    answer = message_with_metadata("Any fever?", input_tokens=321, output_tokens=4, thinking="gout?")
    turn = await AgentClinicDoctor(scripted(answer), max_new_tokens=50).decide(OBJECTIVE, [], 1, 20)
    assert (turn.input_tokens, turn.output_tokens, turn.model, turn.thinking) == (321, 4, "fake:medgemma", "gout?")


def test_the_twelve_doctor_biases() -> None:
    biases = agentclinic_doctor_biases()
    assert set(biases) == set(COGNITIVE) | set(IMPLICIT) and len(biases) == 12
    for name in COGNITIVE:
        assert "cancer" in biases[name], name
    for name in IMPLICIT:
        subject = {"education": "medical school", "cultural": "cultural"}.get(name, name.replace("_", " "))
        assert subject in biases[name] and "cancer" not in biases[name], name
    for name, sentence in biases.items():
        prompt = agentclinic_doctor_messages(OBJECTIVE, [], 1, 20, bias=name)[0].content
        # Inserted after the tag rules and before the objective, as upstream does.
        assert prompt.index("DIAGNOSIS READY") < prompt.index(sentence) < prompt.index(OBJECTIVE)
    assert not any(s in agentclinic_doctor_messages(OBJECTIVE, [], 1, 20)[0].content for s in biases.values())


def test_an_unknown_bias_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown doctor bias 'anchoring'.*confirmation.*status_quo"):
        AgentClinicDoctor(scripted(), bias="anchoring")
    with pytest.raises(ValueError, match="unknown doctor bias"):
        agentclinic_doctor_messages(OBJECTIVE, [], 1, 20, bias="self_diagnosis")


def test_bias_names_and_tags_match_the_reference_page() -> None:
    if not REFERENCE.is_file():
        pytest.skip(f"reference page not present: {REFERENCE}")
    text = " ".join(REFERENCE.read_text(encoding="utf-8").split())
    listed = re.search(r"\(doctor: (.*?); patient:", text)
    assert listed is not None
    names = set(re.findall(r"[a-z_]+", listed.group(1))) - {"and", "implicit"}
    assert names == set(agentclinic_doctor_biases())
    assert "`REQUEST TEST: <name>`" in text and "`DIAGNOSIS READY: <dx>`" in text
    assert "this is the final question, give a diagnosis" in text
