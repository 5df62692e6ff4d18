"""Routing, budgets and state of the consultation graph, driven by langchain-core fake chat models."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agents.doctor import Doctor
from graphs import build_consultation_graph, consultation_mermaid, exchanges_from, recursion_limit_for
from graphs.consultation import route_after_doctor
from tests.graphs.helpers import TableEnvironment, decision, doctor_model


async def run(model, env, max_turns: int) -> dict:
    graph = build_consultation_graph(Doctor(model), env, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}, "recursion_limit": recursion_limit_for(max_turns)}
    return await graph.ainvoke({"case_id": "c1", "objective": env.opening(), "max_turns": max_turns}, config)


@pytest.mark.parametrize("max_turns", [1, 3, 20])
async def test_doctor_that_never_diagnoses_still_ends_with_a_diagnosis(max_turns: int) -> None:
    env = TableEnvironment()
    final = await run(doctor_model(decision("ask", "Where is the pain?")), env, max_turns)
    assert final["turn"] == max_turns
    assert final["ended_by"] == "turn_budget"
    # The forced diagnosis comes from the differential the doctor kept.
    assert final["final_diagnosis"] == "acute myocardial infarction"
    doctor_turns = [e for e in final["dialogue"] if e["role"] == "doctor"]
    assert len(doctor_turns) == max_turns
    assert doctor_turns[-1]["action"] == "diagnose"
    assert len(env.calls) == max_turns - 1


@pytest.mark.parametrize("max_turns", [1, 5, 20])
async def test_recursion_limit_is_derived_from_the_budget(max_turns: int) -> None:
    # A doctor that never diagnoses uses the whole budget: 2 * max_turns + 2 is the least limit that lets it
    # finish, and the derived limit keeps a margin of exactly 2 above it (not a number picked at random).
    from langgraph.errors import GraphRecursionError

    async def finish(limit: int) -> dict:
        graph = build_consultation_graph(Doctor(doctor_model(decision("ask", "More?"))), TableEnvironment(),
                                         checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "t"}, "recursion_limit": limit}
        return await graph.ainvoke({"case_id": "c", "objective": "o", "max_turns": max_turns}, config)

    least = 2 * max_turns + 2
    assert recursion_limit_for(max_turns) == least + 2
    assert (await finish(least))["turn"] == max_turns
    with pytest.raises(GraphRecursionError):
        await finish(least - 1)


async def test_doctor_diagnosis_ends_early_and_records_tests() -> None:
    env = TableEnvironment({"Troponin": "troponin I 4.2 ng/mL (high)"})
    model = doctor_model(
        decision("ask", "When did it start?"),
        decision("test", "Troponin"),
        decision("test", "Coronary angiogram"),
        decision("diagnose", "Acute myocardial infarction", p=0.9),
    )
    final = await run(model, env, 20)
    assert final["turn"] == 4
    assert final["ended_by"] == "doctor"
    assert final["final_diagnosis"] == "Acute myocardial infarction"
    assert [t["name"] for t in final["tests_ordered"]] == ["Troponin", "Coronary angiogram"]
    assert [t["available"] for t in final["tests_ordered"]] == [True, False]
    sources = [f["source"] for f in final["findings"]]
    assert sources == ["patient", "test:Troponin", "test:Coronary angiogram"]
    roles = [e["role"] for e in final["dialogue"]]
    assert roles == ["doctor", "patient", "doctor", "measurement", "doctor", "measurement", "doctor"]
    assert len(final["differentials"]) == 4


def test_exchanges_pair_each_reply_with_its_answer() -> None:
    dialogue = [
        {"turn": 1, "role": "doctor", "text": "Q1", "reply": "{json1}"},
        {"turn": 1, "role": "patient", "text": "A1"},
        {"turn": 2, "role": "doctor", "text": "T2", "reply": "{json2}"},
        {"turn": 2, "role": "measurement", "text": "R2"},
        {"turn": 3, "role": "doctor", "text": "Q3", "reply": "{json3}"},
    ]
    pairs = exchanges_from(dialogue)
    assert [(p.reply, p.answer, p.answered_by) for p in pairs] == [
        ("{json1}", "A1", "patient"),
        ("{json2}", "R2", "measurement"),
    ]


def test_router_refuses_a_state_with_no_decision() -> None:
    assert route_after_doctor({"final_diagnosis": "x", "pending": None}) == "finalize"
    assert route_after_doctor({"final_diagnosis": None, "pending": {"action": "test", "text": "CBC"}}) == "environment"
    assert route_after_doctor({"final_diagnosis": None, "pending": {"action": "record", "text": "HbA1c"}}) == "record"
    with pytest.raises(RuntimeError):
        route_after_doctor({"final_diagnosis": None, "pending": None, "turn": 3})


def test_graph_shape_snapshot() -> None:
    mermaid = consultation_mermaid()
    for edge in ("__start__ --> intake", "intake -.-> doctor", "intake -.-> hypothesis", "doctor -.-> environment",
                 "doctor -.-> finalize", "doctor -.-> record", "doctor -.-> approval", "record -.-> doctor",
                 "environment -.-> doctor", "hypothesis -.-> challenger", "hypothesis -.-> consensus",
                 "checklist --> consensus", "consensus -.-> environment", "approval -.-> finalize",
                 "finalize --> __end__"):
        assert edge in mermaid, edge
