"""The record question-answering graph end to end over the small hand-built record, with scripted fake models."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agents.navigator import Navigator
from graphs.record_qa import (
    ask_record,
    build_record_qa_graph,
    record_qa_mermaid,
    route_after_fetch,
)
from graphs.record_store import RecordStoreError
from tests.doctor.fakes import scripted
from tests.navigator.small_record import NOW, PATIENT, RecordingStore, small_record


def plan(*fetches: dict[str, Any]) -> str:
    return json.dumps({"fetches": list(fetches)})


def reply(text: str) -> str:
    return json.dumps({"answer": text, "citations": []})


async def ask(store: Any, question: str, *replies: Any, **graph_options: Any) -> tuple[Any, Any]:
    model = scripted(*replies)
    graph = build_record_qa_graph(Navigator(model), store, **graph_options)
    return await ask_record(graph, PATIENT, question, NOW), model


async def test_plan_is_honoured_and_the_answer_cites_what_was_fetched() -> None:
    store = RecordingStore(small_record())
    result, model = await ask(
        store, "What was the latest HbA1c?",
        plan({"resource_type": "Observation", "codes": ["4548-4"]}),
        reply("HbA1c was 6.8 % on 2023-11-20 [Observation/a1c-2023]."),
    )  # fmt: skip
    assert [t for t, _ in store.searches()] == ["Observation"]
    _, params = store.searches()[0]
    # A "latest" question: one search per code, newest first, a few each, up to the stated now.
    assert params == {"patient": PATIENT, "date": ["le2024-06-01"], "_sort": "-date", "code": "4548-4", "_count": "3"}
    assert result.citations == ["Observation/a1c-2023"]
    assert result.answer == "HbA1c was 6.8 % on 2023-11-20 [Observation/a1c-2023]."
    assert (result.plan_source, result.degraded, result.model_calls, result.requeried) == ("model", False, 2, False)
    assert result.types_fetched == ["Observation"]
    assert result.window.latest and result.window.end == NOW
    # The model read the three HbA1c facts, newest first, and nothing else was fetched.
    prompt = model.calls[1][0][-1].content
    assert prompt.index("a1c-2023") < prompt.index("a1c-2021") < prompt.index("a1c-2019")
    assert "wt-2023" not in prompt


async def test_date_window_reaches_the_store_and_filters_facts() -> None:
    store = RecordingStore(small_record())
    result, model = await ask(
        store, "How has her HbA1c changed since 2021?",
        plan({"resource_type": "Observation", "codes": ["4548-4"]}),
        reply("It fell from 7.1 % [Observation/a1c-2021] to 6.8 % [Observation/a1c-2023]."),
    )  # fmt: skip
    (_, params), = store.searches()
    assert params["date"] == ["ge2021-01-01", "le2024-06-01"]
    assert "a1c-2019" not in model.calls[1][0][-1].content
    assert result.window.start is not None and result.window.start.isoformat() == "2021-01-01"
    assert result.citations == ["Observation/a1c-2021", "Observation/a1c-2023"]
    assert "2021-01-01 to 2024-06-01" in model.calls[0][0][-1].content  # the model is told the window too


async def test_a_narrower_plan_range_is_kept_inside_the_window() -> None:
    store = RecordingStore(small_record())
    await ask(
        store, "HbA1c since 2021",
        plan({"resource_type": "Observation", "codes": ["4548-4"], "start": "2023-01-01", "end": "2030-01-01"}),
        reply("6.8 % [Observation/a1c-2023]."),
    )  # fmt: skip
    assert store.searches()[0][1]["date"] == ["ge2023-01-01", "le2024-06-01"]


async def test_references_are_followed_and_can_be_cited() -> None:
    store = RecordingStore(small_record())
    result, model = await ask(
        store, "Which medications is she on?",
        plan({"resource_type": "MedicationRequest"}),
        reply("Metformin [MedicationRequest/mr-met, Medication/med-met] and lisinopril [MedicationRequest/mr-lis]."),
    )  # fmt: skip
    assert store.resolved() == ["Medication/med-met"]
    prompt = model.calls[1][0][-1].content
    assert "[MedicationRequest/mr-met]" in prompt and "[Medication/med-met] Medication Metformin" in prompt
    assert result.citations == ["MedicationRequest/mr-met", "Medication/med-met", "MedicationRequest/mr-lis"]
    assert result.dropped_citations == []
    assert result.fact_count == 3


async def test_observation_encounters_are_followed_within_the_bound() -> None:
    store = RecordingStore(small_record())
    await ask(
        store, "HbA1c results",
        plan({"resource_type": "Observation", "codes": ["4548-4"]}),
        reply("6.8 % [Observation/a1c-2023]."),
        max_follow=2,
    )  # fmt: skip
    assert store.resolved() == ["Encounter/e-2023", "Encounter/e-2021"]  # newest first, two at most


async def test_empty_fetch_requeries_once_without_codes() -> None:
    store = RecordingStore(small_record())
    result, _ = await ask(
        store, "Her weight in the last 3 months?",
        plan({"resource_type": "Observation", "codes": ["29463-7"]}),
    )  # fmt: skip
    searches = store.searches()
    assert len(searches) == 2  # the first fetch and one requery, never more
    assert searches[0][1]["code"] == "29463-7" and "code" not in searches[1][1]
    assert searches[1][1]["date"] == ["ge2024-03-01", "le2024-06-01"]
    assert (result.requeried, result.widened, result.fact_count) == (True, "codes dropped", 0)
    assert "no entries" in result.answer and result.model_calls == 1  # nothing to cite: no answer call


async def test_empty_fetch_without_codes_requeries_without_the_window() -> None:
    store = RecordingStore(small_record())
    result, _ = await ask(
        store, "Any vaccinations in 2020?",
        plan({"resource_type": "Immunization"}),
        reply("Influenza vaccine on 2023-10-01 [Immunization/imm-flu], outside 2020."),
    )  # fmt: skip
    assert [p.get("date") for _, p in store.searches()] == [["ge2020-01-01", "le2020-12-31"], None]
    assert (result.requeried, result.widened, result.citations) == (True, "window dropped", ["Immunization/imm-flu"])


async def test_an_invented_citation_is_dropped() -> None:
    result, _ = await ask(
        RecordingStore(small_record()), "latest HbA1c",
        plan({"resource_type": "Observation", "codes": ["4548-4"]}),
        reply("HbA1c 6.8 % [Observation/a1c-2023]. It was 5.0 % in 2024 [Observation/made-up]."),
    )  # fmt: skip
    assert result.citations == ["Observation/a1c-2023"]
    assert result.dropped_citations == ["Observation/made-up"]
    assert "made-up" not in result.answer
    assert result.unsupported_sentences == ["It was 5.0 % in 2024."]
    assert not result.degraded


async def test_garbage_falls_back_on_both_steps_with_valid_citations() -> None:
    store = RecordingStore(small_record())
    result, model = await ask(store, "What is her latest HbA1c?", "zzz", "???", "blah", "{\"answer\": \"\"}")
    assert len(model.calls) == 4
    assert (result.plan_source, result.degraded) == ("fallback", True)
    assert result.answer.startswith("Entries in the record most relevant")
    assert result.citations and result.citations[0] == "Observation/a1c-2023"
    fetched = {f"{t}/{r['id']}" for t, p in store.searches() for r in await store.inner.search(t, p)}
    assert set(result.citations) <= fetched | {f"Encounter/{e}" for e in ("e-2019", "e-2021", "e-2023")}
    assert result.dropped_citations == []


async def test_store_errors_are_recorded_and_the_rest_answers() -> None:
    class Failing(RecordingStore):
        async def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
            if resource_type == "Condition":
                raise RecordStoreError("503 from server")
            return await super().search(resource_type, params)

    result, _ = await ask(
        Failing(small_record()), "Diabetes and allergies?",
        plan({"resource_type": "Condition"}, {"resource_type": "AllergyIntolerance"}),
        reply("Penicillin allergy [AllergyIntolerance/al-pen]."),
    )  # fmt: skip
    assert result.errors == ["Condition: RecordStoreError: 503 from server"]
    assert result.citations == ["AllergyIntolerance/al-pen"]

    result, model = await ask(Failing(small_record()), "Diabetes?", plan({"resource_type": "Condition"}))
    assert "could not be read" in result.answer and len(model.calls) == 1  # no "nothing found" claim


async def test_checkpointed_state_holds_lines_not_resources() -> None:
    graph = build_record_qa_graph(
        Navigator(
            scripted(plan({"resource_type": "MedicationRequest"}), reply("Metformin [MedicationRequest/mr-met]."))
        ),
        RecordingStore(small_record()),
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "t1"}}
    result = await ask_record(graph, PATIENT, "medications?", NOW, config=config)
    assert result.citations == ["MedicationRequest/mr-met"]
    values = (await graph.aget_state(config)).values
    assert {f["reference"] for f in values["facts"]} == {"MedicationRequest/mr-met", "MedicationRequest/mr-lis"}
    assert "resourceType" not in json.dumps(values)  # no raw FHIR resource was checkpointed


async def test_ask_record_builds_the_graph_from_parts() -> None:
    model = scripted(plan({"resource_type": "AllergyIntolerance"}), reply("Penicillin [AllergyIntolerance/al-pen]."))
    result = await ask_record((Navigator(model), RecordingStore(small_record())), PATIENT, "allergies?", NOW)
    assert result.citations == ["AllergyIntolerance/al-pen"]
    assert result.patient_id == PATIENT and result.question == "allergies?"


@pytest.mark.parametrize(
    ("state", "route"),
    [
        ({"facts": [{"reference": "Observation/1"}], "plan": [], "window": {}}, "follow_references"),
        ({"facts": [], "plan": [{"resource_type": "Observation", "codes": ["1"]}], "window": {}}, "requery"),
        ({"facts": [], "plan": [{"resource_type": "Observation", "codes": ["1"]}], "window": {},
          "widened": "codes dropped"}, "follow_references"),
        ({"facts": [], "plan": [{"resource_type": "Observation"}], "window": {}}, "follow_references"),
    ],
)
def test_route_after_fetch(state: dict[str, Any], route: str) -> None:
    assert route_after_fetch(state) == route  # type: ignore[arg-type]


def test_graph_shape() -> None:
    diagram = record_qa_mermaid()
    for edge in ("resolve_dates --> manifest", "manifest --> plan", "plan --> fetch", "fetch -.-> requery",
                 "requery --> fetch", "fetch -.-> follow_references", "follow_references --> answer",
                 "answer --> check_citations", "check_citations --> __end__"):
        assert edge in diagram


async def test_a_second_question_on_the_same_thread_starts_clean() -> None:
    replies = [plan({"resource_type": "AllergyIntolerance"}), reply("Penicillin [AllergyIntolerance/al-pen].")]
    graph = build_record_qa_graph(Navigator(scripted(*replies, *replies)), RecordingStore(small_record()),
                                  checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "same"}}
    first = await ask_record(graph, PATIENT, "allergies?", NOW, config=config)
    second = await ask_record(graph, PATIENT, "allergies?", NOW, config=config)
    assert (second.fact_count, second.model_calls, second.store_requests) == (
        first.fact_count, first.model_calls, first.store_requests)  # fmt: skip
    assert first.fact_count == 1


async def test_an_unknown_patient_gets_an_answer_without_any_model_call() -> None:
    model = scripted()
    result = await ask_record((Navigator(model), RecordingStore(small_record())), "nobody", "Any allergies?", NOW)
    assert result.answer == "The record has no entries matching this question."
    assert (result.model_calls, result.fact_count, result.citations, result.plan_source) == (0, 0, [], "none")


async def test_a_model_error_falls_back_and_is_reported() -> None:
    result, _ = await ask(RecordingStore(small_record()), "Any allergies?", RuntimeError("server down"),
                          RuntimeError("still down"))  # fmt: skip
    assert (result.plan_source, result.degraded, result.model_calls) == ("fallback", True, 2)
    assert result.errors == ["plan model: RuntimeError: server down", "answer model: RuntimeError: still down"]
    assert result.citations == ["AllergyIntolerance/al-pen"]  # keyword plan, extractive answer
