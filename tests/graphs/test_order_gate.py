"""Every order passes the gate: priced into the ledger, checked against the record's facts, kept within the budget."""

from __future__ import annotations

import random

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agents.doctor import Doctor
from agents.panel import VISIT_PRICE, FeeTable
from graphs import build_consultation_graph, recursion_limit_for
from graphs.orders import review_order, starts_question_round
from graphs.record_lookup import RecordReply, RecordSummary
from tests.graphs.helpers import TableEnvironment, decision, doctor_model

KIDNEY_FAILURE = {
    "conditions": [["End stage renal disease", "Condition/ckd5/_history/2"]],
    "allergies": [],
    "medications": [],
    "devices": [],
    "labs": {"eGFR": [12.0, "mL/min/1.73m2", "Observation/egfr-1/_history/1"]},
    "pregnant": None,
    "pregnancy_source": "",
}


class FactsRecord:
    """A health record with a summary, answers and the safety facts of a patient in kidney failure."""

    patient = "Patient/p1"

    def __init__(self, facts: dict) -> None:
        self._facts = facts

    async def summary(self) -> RecordSummary:
        return RecordSummary(text="- End stage renal disease [Condition/ckd5]", patient=self.patient,
                             sources=["Condition/ckd5/_history/2"])

    async def ask(self, question: str) -> RecordReply:
        return RecordReply(text="Nothing more.", sources=[])

    async def facts(self) -> dict:
        return self._facts


async def run(model, env, max_turns: int, *, record=None, budget: float | None = None) -> dict:
    graph = build_consultation_graph(Doctor(model), env, record=record, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "g1"}, "recursion_limit": recursion_limit_for(max_turns)}
    graph_input = {"case_id": "c1", "objective": env.opening(), "max_turns": max_turns, "budget": budget}
    return await graph.ainvoke(graph_input, config)


async def test_contrast_ct_is_blocked_for_a_patient_in_kidney_failure() -> None:
    env = TableEnvironment({"CT abdomen with contrast": "normal"})
    model = doctor_model(decision("test", "CT abdomen with contrast"), decision("diagnose", "Renal colic", p=0.7))
    final = await run(model, env, 5, record=FactsRecord(KIDNEY_FAILURE))
    # The environment never saw the order, nothing was charged, and the refusal says why and from which resources.
    assert env.calls == []
    assert final["costs"] == []
    blocked = final["blocked"]
    assert [b["test"] for b in blocked] == ["CT abdomen with contrast"]
    assert blocked[0]["reasons"][0]["severity"] == "block"
    assert "Observation/egfr-1/_history/1" in blocked[0]["reasons"][0]["sources"]
    safety = [f for f in final["findings"] if f["source"] == "safety"]
    assert len(safety) == 1 and "Order blocked" in safety[0]["text"]
    assert "Observation/egfr-1/_history/1" in safety[0]["refs"]
    assert final["tests_ordered"] == []
    assert [e["role"] for e in final["dialogue"]][:2] == ["doctor", "safety"]


async def test_the_same_ct_goes_ahead_when_the_record_shows_normal_kidneys() -> None:
    facts = {**KIDNEY_FAILURE, "conditions": [], "labs": {"eGFR": [95.0, "mL/min/1.73m2", "Observation/e/_history/1"]}}
    env = TableEnvironment({"CT abdomen with contrast": "normal"})
    model = doctor_model(decision("test", "CT abdomen with contrast"), decision("diagnose", "Renal colic", p=0.7))
    final = await run(model, env, 5, record=FactsRecord(facts))
    assert env.calls == [("test", "CT abdomen with contrast")]
    assert final["blocked"] == []
    charged = [c for c in final["costs"] if c["kind"] == "test"]
    assert len(charged) == 1 and charged[0]["matched"] and charged[0]["price"] > 100
    assert final["tests_ordered"][0]["price"] == charged[0]["price"]


async def test_consecutive_questions_are_one_visit_and_a_test_ends_the_round() -> None:
    env = TableEnvironment({"CBC": "normal"})
    model = doctor_model(decision("ask", "Q1?"), decision("ask", "Q2?"), decision("test", "CBC"),
                         decision("ask", "Q3?"), decision("diagnose", "Angina", p=0.7))
    final = await run(model, env, 10)
    visits = [c for c in final["costs"] if c["kind"] == "visit"]
    assert [v["turn"] for v in visits] == [1, 4]
    tests = [c for c in final["costs"] if c["kind"] == "test"]
    assert [t["canonical"] for t in tests] == [FeeTable.default().lookup("CBC").canonical]
    assert sum(c["price"] for c in final["costs"]) == 2 * VISIT_PRICE + tests[0]["price"]


async def test_a_budget_that_cannot_pay_for_questions_forces_the_diagnosis() -> None:
    env = TableEnvironment()
    model = doctor_model(decision("ask", "Q1?"), decision("test", "CBC"), decision("ask", "Q2?"),
                         decision("ask", "Q3?"))
    final = await run(model, env, 10, budget=VISIT_PRICE + 20)
    assert sum(c["price"] for c in final["costs"]) <= VISIT_PRICE + 20
    assert final["ended_by"] == "budget"
    assert final["final_diagnosis"]
    refused = [e for e in final["dialogue"] if e["role"] == "safety"]
    assert refused and "Question not asked" in refused[-1]["text"]


@pytest.mark.parametrize("seed", range(6))
async def test_a_budget_is_never_exceeded_whatever_the_doctor_orders(seed: int) -> None:
    rng = random.Random(seed)
    table = FeeTable.default()
    names = [entry.name for entry in table.entries]
    orders = [decision("test", rng.choice(names)) if rng.random() < 0.7 else decision("ask", f"Question {i}?")
              for i in range(12)]
    budget = rng.choice([0.0, 250.0, 800.0, 2500.0])
    final = await run(doctor_model(*orders), TableEnvironment(), 12, budget=budget)
    spent = sum(c["price"] for c in final["costs"])
    assert spent <= budget, (spent, budget, final["costs"])
    # Refusals are told to the doctor, never silently dropped.
    refused = [e for e in final["dialogue"] if e["role"] == "safety"]
    assert len(refused) == len(final["blocked"]) + sum("Question not asked" in e["text"] for e in refused)


def test_review_prices_every_test_in_a_combined_order() -> None:
    review = review_order("CBC, CMP and lipid panel", facts=None, costs=None, budget=None)
    assert len(review.priced) == 3 and all(t.matched for t in review.priced)
    assert review.allowed
    over = review_order("MRI brain", facts=None, costs=[{"turn": 1, "kind": "visit", "name": "visit",
                                                       "canonical": "visit", "price": 300.0, "matched": True}],
                        budget=400.0)
    assert over.over_budget and not over.allowed and over.budget_left == 100.0
    assert "only $100" in over.refusal("MRI brain")


def test_question_rounds_follow_the_answered_actions() -> None:
    ask = {"role": "doctor", "action": "ask", "turn": 1, "text": "q"}
    test = {"role": "doctor", "action": "test", "turn": 2, "text": "t"}
    assert starts_question_round([ask])
    assert not starts_question_round([ask, {"role": "patient", "turn": 1, "text": "a"}, {**ask, "turn": 2}])
    assert starts_question_round([ask, test, {**ask, "turn": 3}])


async def test_a_fhir_record_in_kidney_failure_blocks_the_contrast_ct_through_the_graph() -> None:
    from agents.navigator import Navigator
    from graphs.record_store import InMemoryRecordStore
    from graphs.store_lookup import StoreRecordLookup
    from tests.tools.records.factories import condition, lab, patient

    subject = {"subject": {"reference": "Patient/p1"}}
    resources = [
        patient(),
        {**condition("ckd", "46177005", "End stage renal disease", "active", "2019-04-01", meta={"versionId": "3"}),
         **subject},
        {**lab("egfr", "62238-1", "eGFR (CKD-EPI)", 12, "2024-03-01", unit="mL/min/{1.73_m2}",
               meta={"versionId": "2"}), **subject},
    ]
    record = StoreRecordLookup(InMemoryRecordStore(resources), Navigator(doctor_model("{}")), "p1")
    env = TableEnvironment({"CT abdomen with contrast": "normal"})
    model = doctor_model(decision("test", "CT abdomen with contrast"), decision("diagnose", "Renal colic", p=0.7))
    final = await run(model, env, 5, record=record)
    assert env.calls == [] and final["costs"] == []
    assert final["patient_facts"]["labs"]["eGFR"][2] == "Observation/egfr/_history/2"
    sources = final["blocked"][0]["reasons"][0]["sources"]
    assert {"Observation/egfr/_history/2", "Condition/ckd/_history/3"} <= set(sources)
