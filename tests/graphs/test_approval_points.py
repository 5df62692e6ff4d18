"""Clinician approval points: the graph pauses with interrupt(), and resumes from its checkpoint with the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.types import Command

from agents.doctor import Doctor
from graphs import build_consultation_graph, open_checkpointer, recursion_limit_for
from graphs.approvals import approval_reasons, read_verdict
from tests.graphs.helpers import TableEnvironment, decision, doctor_model

MAX_TURNS = 6


def config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}, "recursion_limit": recursion_limit_for(MAX_TURNS, approvals=True)}


def start(policy: str) -> dict:
    return {"case_id": "c1", "objective": "Evaluate the patient with chest pain.", "max_turns": MAX_TURNS,
            "approve": policy}


async def test_diagnosis_pauses_and_an_edit_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "checkpoints.sqlite"
    env = TableEnvironment()
    model = doctor_model(decision("ask", "When did it start?"), decision("diagnose", "Angina", p=0.8))
    async with open_checkpointer(db) as saver:
        graph = build_consultation_graph(Doctor(model), env, checkpointer=saver)
        await graph.ainvoke(start("diagnosis"), config("a1"))
        paused = await graph.aget_state(config("a1"))
        assert paused.interrupts, "the graph should wait for the clinician"
        request = paused.interrupts[0].value
        assert request["kind"] == "approval" and request["action"] == "diagnose" and request["text"] == "Angina"
        assert request["reasons"] == ["final diagnosis"]
        assert paused.values.get("final_diagnosis") is None

    # A new process: a fresh graph over the same checkpoint file picks up the pause and takes the edit.
    async with open_checkpointer(db) as saver:
        graph = build_consultation_graph(Doctor(doctor_model("unused")), env, checkpointer=saver)
        final = await graph.ainvoke(Command(resume={"decision": "edit", "text": "Unstable angina", "note": "ECG"}),
                                    config("a1"))
    assert final["final_diagnosis"] == "Unstable angina"
    assert final["ended_by"] == "doctor"
    assert final["approvals"] == [{"turn": 2, "action": "diagnose", "text": "Angina", "reasons": ["final diagnosis"],
                                   "decision": "edit", "edited": "Unstable angina", "note": "ECG"}]


async def test_a_rejected_test_goes_back_to_the_doctor_and_is_never_run(tmp_path: Path) -> None:
    env = TableEnvironment({"Coronary angiography": "stenosis"})
    model = doctor_model(decision("test", "Coronary angiography"), decision("diagnose", "Angina", p=0.8))
    async with open_checkpointer(tmp_path / "c.sqlite") as saver:
        graph = build_consultation_graph(Doctor(model), env, checkpointer=saver)
        await graph.ainvoke(start("invasive"), config("r1"))
        request = (await graph.aget_state(config("r1"))).interrupts[0].value
        assert request["action"] == "test" and request["reasons"][0].startswith("invasive")
        assert request["price"] and request["price"] > 1000
        final = await graph.ainvoke(Command(resume="reject"), config("r1"))
    assert env.calls == []
    assert final["costs"] == []
    assert final["approvals"][0]["decision"] == "reject"
    assert any(f["source"] == "clinician" and "rejected" in f["text"] for f in final["findings"])
    # The invasive-only policy lets the diagnosis through without a pause.
    assert final["final_diagnosis"] == "Angina" and final["turn"] == 2


async def test_an_approved_expensive_test_is_run_and_charged(tmp_path: Path) -> None:
    env = TableEnvironment({"MRI brain": "normal"})
    model = doctor_model(decision("test", "MRI brain"), decision("diagnose", "Migraine", p=0.8))
    async with open_checkpointer(tmp_path / "c.sqlite") as saver:
        graph = build_consultation_graph(Doctor(model), env, checkpointer=saver)
        await graph.ainvoke({**start("expensive"), "expensive_over": 200.0}, config("e1"))
        assert (await graph.aget_state(config("e1"))).interrupts
        final = await graph.ainvoke(Command(resume="approve"), config("e1"))
    assert env.calls == [("test", "MRI brain")]
    assert [c["kind"] for c in final["costs"]] == ["test"]


async def test_no_pause_under_the_none_policy() -> None:
    async with open_checkpointer(None) as saver:
        graph = build_consultation_graph(Doctor(doctor_model(decision("diagnose", "Angina", p=0.8))),
                                         TableEnvironment(), checkpointer=saver)
        final = await graph.ainvoke(start("none"), config("n1"))
    assert final["final_diagnosis"] == "Angina" and not final.get("approvals")


def test_policy_reasons() -> None:
    assert approval_reasons("none", "diagnose") == []
    assert approval_reasons("diagnosis", "test", price=9000) == []
    assert approval_reasons("expensive", "test", price=499, expensive_over=500) == []
    assert approval_reasons("expensive", "test", price=500, expensive_over=500)[0].startswith("expensive")
    assert approval_reasons("all", "test", price=5) == ["every test order needs approval"]
    assert approval_reasons("all", "ask") == []
    with pytest.raises(ValueError, match="unknown approval policy"):
        approval_reasons("sometimes", "test")


def test_verdicts_are_read_strictly() -> None:
    assert read_verdict("a").decision == "approve"
    edited = read_verdict("edit: CT head without contrast")
    assert (edited.decision, edited.text) == ("edit", "CT head without contrast")
    assert read_verdict({"decision": "reject", "note": "  too risky "}).note == "too risky"
    with pytest.raises(ValueError, match="needs the new text"):
        read_verdict("edit")
    with pytest.raises(ValueError, match="approve, edit or reject"):
        read_verdict("maybe")
