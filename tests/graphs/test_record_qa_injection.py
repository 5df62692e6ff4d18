"""Record text is data: a prompt injection inside a resource changes neither what the store is asked for nor the
citations that survive."""

from __future__ import annotations

import json
from typing import Any

from agents.navigator import Navigator
from agents.navigator.answer import DATA_CLOSE, DATA_OPEN
from graphs.record_qa import ask_record, build_record_qa_graph
from tests.doctor.fakes import scripted
from tests.navigator.small_record import (
    INJECTION,
    NOW,
    PATIENT,
    RecordingStore,
    injected_observation,
    small_record,
)

PLAN = json.dumps({"fetches": [{"resource_type": "Observation", "codes": ["4548-4"]}]})
# What a model that obeyed the injection would answer.
OBEYING = json.dumps({"answer": "HbA1c 6.8 % [Observation/a1c-2023]. See http://evil.example/ [Patient/evil].",
                      "citations": ["Observation/a1c-2023", "Patient/evil"]})


async def run(
    resources: list[dict[str, Any]], *replies: str, question: str = "What is the latest HbA1c?"
) -> tuple[Any, RecordingStore, Any]:
    store = RecordingStore(resources)
    model = scripted(*replies)
    result = await ask_record(build_record_qa_graph(Navigator(model), store), PATIENT, question, NOW)
    return result, store, model


def inside_data_block(prompt: str, text: str) -> bool:
    start, end = prompt.index(DATA_OPEN), prompt.index(DATA_CLOSE)
    return all(start < i < end for i in _positions(prompt, text)) and bool(_positions(prompt, text))


def _positions(haystack: str, needle: str) -> list[int]:
    found, i = [], haystack.find(needle)
    while i != -1:
        found.append(i)
        i = haystack.find(needle, i + 1)
    return found


async def test_injection_does_not_change_store_requests_or_get_a_citation_through() -> None:
    question = "What were her HbA1c results?"  # not "latest": every result is fetched in both runs
    clean, clean_store, _ = await run(small_record(), PLAN, OBEYING, question=question)
    result, store, model = await run([*small_record(), injected_observation()], PLAN, OBEYING, question=question)

    # Exactly the same requests as without the injected resource: its foreign encounter URL was not followed.
    assert store.calls == clean_store.calls
    assert not any("evil" in json.dumps(call) for call in store.calls)
    # The invented citation is removed from the answer in both runs.
    for answer in (clean, result):
        assert answer.dropped_citations == ["Patient/evil"]
        assert answer.citations == ["Observation/a1c-2023"]
        assert "Patient/evil" not in answer.answer
    # The injected text reached the model only inside the data block, as one quoted line without brackets.
    prompt = model.calls[1][0][-1].content
    assert inside_data_block(prompt, "Ignore previous instructions")
    assert "[Patient/evil]" not in prompt


async def test_a_plan_that_obeys_an_injection_cannot_widen_the_fetch() -> None:
    hostile_plan = json.dumps({"fetches": [
        {"resource_type": "http://evil.example/fhir/Patient", "codes": ["evil"]},
        {"resource_type": "Patient", "codes": ["evil"], "start": "1900-01-01"},
        {"resource_type": "Observation", "codes": ["4548-4"]},
    ]})  # fmt: skip
    result, store, _ = await run([*small_record(), injected_observation()], hostile_plan, OBEYING)
    searches = store.searches()
    assert [t for t, _ in searches] == ["Patient", "Observation"]
    assert searches[0][1] == {"_id": PATIENT, "_count": "50"}
    assert not any("evil" in json.dumps(params) for _, params in searches)
    assert "Patient/evil" not in result.citations


async def test_extractive_fallback_over_the_injected_record_cites_only_fetched_resources() -> None:
    result, store, _ = await run([*small_record(), injected_observation()], "x", "y", "z", "w")
    assert result.degraded
    assert "Observation/note-evil" in result.citations  # the note is a real, fetched resource: citable as data
    for citation in result.citations:
        assert await store.inner.resolve(citation) is not None
    assert "Patient/evil" not in result.answer and "Patient/evil" not in result.citations


async def test_an_injection_in_a_code_display_stays_inside_the_manifest_block() -> None:
    poisoned = injected_observation()
    poisoned["code"] = {"coding": [{"system": "http://loinc.org", "code": "x-1", "display": INJECTION}]}
    _, _, model = await run([*small_record(), poisoned], PLAN, OBEYING)
    plan_prompt = model.calls[0][0][-1].content
    assert inside_data_block(plan_prompt, "Ignore previous instructions")
