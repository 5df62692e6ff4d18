"""The panel inside the consultation graph: parallel roles, a failing role, can't-miss floors, provenance."""

from __future__ import annotations

import json
import time

from langgraph.checkpoint.memory import InMemorySaver

from agents.doctor import Doctor
from agents.panel import Panel, PanelPolicy
from graphs import build_consultation_graph, recursion_limit_for
from graphs.consultation import ConsultationParts
from tests.graphs.helpers import TableEnvironment, doctor_model
from tests.panel.fakes import RoleScriptedModel

CHEST_PAIN = "Evaluate the patient with chest pain."


def hypothesis(*items: tuple[str, float], step: str = "ask", question: str = "When did the pain start?",
               moved_by: tuple[str, ...] = ()) -> str:
    return json.dumps({
        "differential": [{"diagnosis": d, "probability": p, "evidence": list(moved_by)} for d, p in items],
        "moved_by": list(moved_by), "next_step": step, "question": question,
    })


async def run_panel(model: RoleScriptedModel, env: TableEnvironment, max_turns: int, *, variant: str = "no-budget",
                    budget: float | None = None, members: int | None = None, objective: str = CHEST_PAIN) -> dict:
    policy = PanelPolicy.build(variant, budget=budget, members=members)
    graph = build_consultation_graph(checkpointer=InMemorySaver())
    parts = ConsultationParts(Doctor(doctor_model("unused")), env, panel=Panel(model))
    config = {"configurable": {"thread_id": "p1"},
              "recursion_limit": recursion_limit_for(max_turns, doctor="panel")}
    graph_input = {"case_id": "c1", "objective": objective, "max_turns": max_turns, "doctor": "panel",
                   "panel_policy": policy.to_dict(), "budget": policy.budget}
    return await graph.ainvoke(graph_input, config, context=parts)


async def test_the_four_roles_run_as_one_parallel_step() -> None:
    delay = 0.2
    model = RoleScriptedModel(replies={"hypothesis": hypothesis(("Acute coronary syndrome", 0.5))}, delay=delay)
    started = time.perf_counter()
    final = await run_panel(model, TableEnvironment(), 2)
    wall = time.perf_counter() - started
    # Turn 1: hypothesis, then the four roles at once; turn 2 is the last, so hypothesis alone, then the diagnosis.
    roles = [role for role, _, _ in model.calls]
    assert roles.count("hypothesis") == 2
    parallel = [(start, end) for role, start, end in model.calls if role not in ("hypothesis",)]
    assert len(parallel) == 4
    # Overlap, not order: every parallel call started before any of them finished.
    assert max(start for start, _ in parallel) < min(end for _, end in parallel)
    # Three delays of model time in sequence (two hypothesis calls and one parallel step), where a chain of the
    # six calls would take six; the margin allows for a busy machine.
    assert wall < 4.5 * delay, f"the panel took {wall:.2f} s for 3 sequential calls of {delay} s"
    assert final["final_diagnosis"] == "Acute coronary syndrome"
    turn_one = [n for n in final["panel"] if n["turn"] == 1]
    assert sorted(n["role"] for n in turn_one) == sorted(
        ["hypothesis", "test_chooser", "challenger", "stewardship", "checklist"])


async def test_consensus_goes_on_when_a_role_fails() -> None:
    model = RoleScriptedModel(
        replies={"hypothesis": hypothesis(("Pneumonia", 0.4), question="Do you have a cough?")},
        fail={"challenger"},
    )
    env = TableEnvironment()
    final = await run_panel(model, env, 3)
    failed = [n for n in final["panel"] if n["role"] == "challenger"]
    assert failed and all(not n["ok"] and n["error"] for n in failed)
    assert all(n["ok"] for n in final["panel"] if n["role"] != "challenger")
    first = final["consensus"][0]
    assert any(f.startswith("challenger") for f in first["failed_roles"])
    assert first["action"] in ("ask", "test", "diagnose")
    # The consultation went on: the patient was asked, and the last turn diagnosed.
    assert env.calls and env.calls[0] == ("ask", "Do you have a cough?")
    assert final["final_diagnosis"] == "Pneumonia"


async def test_cant_miss_diagnoses_stay_until_a_finding_excludes_them() -> None:
    replies = {
        "hypothesis": hypothesis(("Gastro-oesophageal reflux disease", 0.8), step="test"),
        "test_chooser": json.dumps({"tests": [{"name": "CT angiography of the chest", "reason": "dissection"}],
                                    "record_question": "", "image_request": ""}),
    }
    env = TableEnvironment({"CT angiography of the chest": "No evidence of aortic dissection. Pulmonary embolism ruled out."})
    final = await run_panel(RoleScriptedModel(replies=replies), env, 3)
    first, second = final["differentials"][0], final["differentials"][1]
    names_first = [i["diagnosis"].lower() for i in first["items"]]
    assert any("dissection" in n for n in names_first), names_first
    assert any("pulmonary embolism" in n for n in names_first)
    assert any("dissection" in k.lower() for k in first["kept"])
    # After the CT excluded both, they are no longer floored into the differential; ACS is still open.
    names_second = [i["diagnosis"].lower() for i in second["items"]]
    assert not any("dissection" in n for n in names_second), names_second
    assert not any("pulmonary embolism" in n for n in names_second)
    assert any("coronary" in n for n in names_second)
    # The finding that excluded them is cited as what moved the second differential.
    ct = next(f for f in final["findings"] if f["source"] == "test:CT angiography of the chest")
    assert ct["id"] in second["moved_by"]


async def test_every_cited_finding_exists_and_ids_are_positions() -> None:
    replies = {"hypothesis": hypothesis(("Acute coronary syndrome", 0.5), moved_by=("F1", "F99"))}
    final = await run_panel(RoleScriptedModel(replies=replies), TableEnvironment(), 4)
    ids = [f["id"] for f in final["findings"]]
    assert ids == [f"F{i}" for i in range(1, len(ids) + 1)]
    for snapshot in final["differentials"]:
        assert set(snapshot["moved_by"]) <= set(ids), snapshot
        assert "F99" not in snapshot["moved_by"]


async def test_instant_variant_diagnoses_on_the_first_turn_with_one_call() -> None:
    model = RoleScriptedModel(replies={"hypothesis": hypothesis(("Stable angina", 0.4))})
    env = TableEnvironment()
    final = await run_panel(model, env, 10, variant="instant")
    assert final["turn"] == 1 and env.calls == []
    assert [role for role, _, _ in model.calls] == ["hypothesis"]
    assert final["final_diagnosis"] == "Stable angina"
    assert final["ended_by"] == "doctor"


async def test_ensemble_runs_each_role_per_member_and_averages() -> None:
    answers = iter([hypothesis(("Pneumonia", 0.8)), hypothesis(("Pneumonia", 0.4)), hypothesis(("Asthma", 0.9))])
    model = RoleScriptedModel(replies={"hypothesis": lambda _messages: next(answers)})
    final = await run_panel(model, TableEnvironment(), 1, variant="ensemble", members=3)
    assert [role for role, _, _ in model.calls] == ["hypothesis"] * 3
    members = sorted(n["member"] for n in final["panel"])
    assert members == [0, 1, 2]
    items = {i["diagnosis"]: i["probability"] for i in final["differentials"][0]["items"]}
    # Mean over members, before the can't-miss floor rescales what is left.
    assert items["Pneumonia"] > items["Asthma"]
    assert final["final_diagnosis"] == "Pneumonia"


async def test_kept_cant_miss_diagnoses_are_not_cut_by_a_full_differential() -> None:
    five = (("Gastro-oesophageal reflux disease", 0.4), ("Costochondritis", 0.2), ("Biliary colic", 0.15),
            ("Peptic ulcer disease", 0.1), ("Panic attack", 0.05))
    final = await run_panel(RoleScriptedModel(replies={"hypothesis": hypothesis(*five)}), TableEnvironment(), 1)
    names = [i["diagnosis"].lower() for i in final["differentials"][0]["items"]]
    assert len(names) >= 9, names
    for kept in ("acute coronary syndrome", "aortic dissection", "pulmonary embolism"):
        assert kept in names
