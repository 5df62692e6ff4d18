"""The session with doctor rules: the transcript's doctor, cost and panel blocks, approval pauses without and with
a person, and a panel consultation on the role-scripted fake."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from agents.panel.policy import PanelPolicy
from graphs.checkpointers import open_checkpointer
from simulations.cases import get_demo_case
from simulations.session import ConsultationPaused, ConsultationSetup, run_consultation
from tests.panel.fakes import RoleScriptedModel

DIAGNOSIS = "Acute inferior myocardial infarction"


def _decision(action: str, text: str) -> str:
    return json.dumps({"action": action, "text": text, "differential": [
        {"diagnosis": DIAGNOSIS, "probability": 0.7}, {"diagnosis": "Aortic dissection", "probability": 0.2}],
        "rationale": "r"})


def _setup(reasoning: Any, **kwargs: Any) -> ConsultationSetup:
    patient = FakeListChatModel(responses=["It started while I was shovelling snow."])
    return ConsultationSetup(
        case=get_demo_case("demo:chest-pain"),
        models={"reasoning": reasoning, "patient": patient, "measurement": patient,
                "judge": FakeListChatModel(responses=["Yes"])},
        specs={"reasoning": "fake:doctor", "patient": "fake:patient", "measurement": "fake:patient",
               "judge": "fake:judge"},
        max_turns=kwargs.pop("max_turns", 6),
        **kwargs,
    )


def _single(**kwargs: Any) -> ConsultationSetup:
    doctor = FakeListChatModel(responses=[_decision("ask", "When did it start?"), _decision("test", "ECG"),
                                          _decision("diagnose", DIAGNOSIS)])
    return _setup(doctor, **kwargs)


def test_a_pause_for_approval_says_what_waits_for_whom() -> None:
    paused = ConsultationPaused("t-9", {"kind": "approval", "action": "test", "text": "CT abdomen with contrast",
                                        "reasons": ["expensive: $1,200"], "prompt": "Approve this order?"})
    assert str(paused) == ("consultation t-9 is waiting for a clinician's approval of test 'CT abdomen with "
                           "contrast' (expensive: $1,200): Approve this order?")
    assert paused.request["kind"] == "approval" and paused.thread_id == "t-9"
    answer = ConsultationPaused("t-9", {"kind": "answer", "action": "ask", "text": "Pain?",
                                        "prompt": "Patient's answer"})
    assert str(answer) == "consultation t-9 is waiting for an answer: Patient's answer"


def test_doctor_rules_are_checked_when_the_setup_is_made() -> None:
    assert _single(doctor_mode="panel").panel_policy == PanelPolicy()  # the default panel is the no-budget one
    with pytest.raises(ValueError, match="unknown doctor 'surgeon'"):
        _single(doctor_mode="surgeon")
    with pytest.raises(ValueError, match="unknown approval policy 'some'"):
        _single(approve="some")
    with pytest.raises(ValueError, match="single doctor only"):
        _single(doctor_mode="panel", doctor_bias="recency")
    with pytest.raises(ValueError, match="panel policy goes with the panel"):
        _single(panel_policy=PanelPolicy())
    with pytest.raises(ValueError, match="positive amount"):
        _single(budget=-5.0)


async def test_a_single_doctor_transcript_records_its_rules_and_its_cost() -> None:
    async with open_checkpointer(None) as saver:
        transcript = await run_consultation(_single(), checkpointer=saver, thread_id="t-cost")
    assert transcript["doctor"]["mode"] == "single" and transcript["doctor"]["arm"] == "single"
    assert transcript["doctor"]["approve"] == "none" and transcript["doctor"]["budget"] is None
    cost = transcript["cost"]
    # One question round (a visit, $300) and an ECG at its fee-table price.
    assert cost["visits"] == 1 and [e["kind"] for e in cost["entries"]] == ["visit", "test"]
    assert cost["total"] == pytest.approx(300.0 + cost["tests_total"]) and cost["tests_total"] > 0
    assert cost["unmatched"] == []
    assert transcript["panel"] == [] and transcript["consensus"] == [] and transcript["blocked"] == []
    assert transcript["approvals"] == []
    assert json.loads(json.dumps(transcript)) == transcript  # JSON-ready


async def test_an_approval_without_a_person_pauses_and_a_person_resumes_it() -> None:
    setup = _single(approve="diagnosis")
    async with open_checkpointer(None) as saver:
        with pytest.raises(ConsultationPaused) as info:
            await run_consultation(setup, checkpointer=saver, thread_id="t-approve")
        request = info.value.request
        assert request["kind"] == "approval" and request["action"] == "diagnose" and request["text"] == DIAGNOSIS
        assert "approval of diagnose" in str(info.value)
        seen: list[Mapping[str, Any]] = []

        async def clinician(value: Mapping[str, Any]) -> Any:
            seen.append(value)
            return {"decision": "approve", "text": None, "note": "agreed"}

        # A resumed consultation keeps the rules it started with, whatever the new setup says.
        transcript = await run_consultation(_single(), checkpointer=saver, thread_id="t-approve", resume=True,
                                            ask_person=clinician)
    assert [v["kind"] for v in seen] == ["approval"]
    assert transcript["outcome"]["final_diagnosis"] == DIAGNOSIS
    assert [(a["action"], a["decision"]) for a in transcript["approvals"]] == [("diagnose", "approve")]
    assert transcript["doctor"]["approve"] == "diagnosis"


async def test_the_interactive_person_gets_every_interrupt_value() -> None:
    seen: list[Mapping[str, Any]] = []

    async def person(value: Mapping[str, Any]) -> Any:
        seen.append(value)
        return "Since this morning." if value["action"] == "ask" else "ST elevation in II, III, aVF"

    async with open_checkpointer(None) as saver:
        transcript = await run_consultation(_single(interactive=True), checkpointer=saver, thread_id="t-person",
                                            ask_person=person)
    assert [(v.get("kind"), v["action"]) for v in seen] == [("answer", "ask"), ("answer", "test")]
    assert transcript["outcome"]["final_diagnosis"] == DIAGNOSIS


async def test_a_panel_consultation_puts_its_deliberation_in_the_transcript() -> None:
    policy = PanelPolicy.build("budgeted", budget=800.0)
    setup = _setup(RoleScriptedModel(), doctor_mode="panel", panel_policy=policy, budget=800.0, max_turns=4)
    async with open_checkpointer(None) as saver:
        transcript = await run_consultation(setup, checkpointer=saver, thread_id="t-panel")
    doctor = transcript["doctor"]
    assert (doctor["mode"], doctor["arm"], doctor["variant"], doctor["budget"]) == (
        "panel", "panel:budgeted", "budgeted", 800.0)
    assert doctor["policy"] == policy.to_dict()
    roles = {note["role"] for note in transcript["panel"]}
    assert {"hypothesis", "test_chooser", "challenger", "stewardship", "checklist"} <= roles
    assert transcript["consensus"] and transcript["consensus"][-1]["action"] == "diagnose"
    assert transcript["outcome"]["final_diagnosis"]
    assert transcript["cost"]["total"] <= 800.0
    assert transcript["differentials"] and transcript["differentials"][-1]["items"]
