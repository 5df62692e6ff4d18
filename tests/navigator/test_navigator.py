"""The navigator role over scripted fake chat models: one call, one repair, then the deterministic fallback."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from agents.navigator import Fact, Navigator, resolve_window
from agents.navigator.answer import DATA_CLOSE, DATA_OPEN
from tests.doctor.fakes import message_with_metadata, scripted

NOW = date(2024, 6, 1)
CATALOG = {"Observation": {"4548-4": "Hemoglobin A1c"}, "Condition": {"44054006": "Diabetes mellitus type 2"}}
MANIFEST = "Observation: 3 resources\n  - Hemoglobin A1c (http://loinc.org|4548-4) x3\nCondition: 1 resource"
FACTS = [
    Fact("Observation/a1c-2023", "[Observation/a1c-2023] 2023-11-20 Hemoglobin A1c 6.8 %", date(2023, 11, 20)),
    Fact("Condition/c-dm", "[Condition/c-dm] 2015-04-01 Diabetes mellitus type 2 (active)", date(2015, 4, 1)),
]
GOOD_PLAN = json.dumps({"fetches": [{"resource_type": "Observation", "codes": ["4548-4"]}]})
GOOD_ANSWER = json.dumps({"answer": "HbA1c was 6.8 % [Observation/a1c-2023].", "citations": []})
QUESTION = "What was the latest HbA1c?"


async def plan(model: Any) -> Any:
    window = resolve_window(QUESTION, NOW)
    return await Navigator(model).plan(QUESTION, manifest=MANIFEST, catalog=CATALOG, window=window, now=NOW)


async def answer(model: Any, facts: list[Fact] = FACTS) -> Any:
    return await Navigator(model).answer(QUESTION, facts, window=resolve_window(QUESTION, NOW), now=NOW)


async def test_plan_from_the_first_reply() -> None:
    model = scripted(message_with_metadata(GOOD_PLAN, input_tokens=300, output_tokens=20))
    turn = await plan(model)
    assert turn.plan.types == ["Observation"] and turn.plan.fetches[0].codes == ["4548-4"]
    assert (turn.cost.calls, turn.cost.degraded, turn.cost.reason) == (1, False, "json")
    assert (turn.cost.input_tokens, turn.cost.output_tokens, turn.cost.model) == (300, 20, "fake:medgemma")
    (messages, kwargs), = model.calls
    # The local backend stops at the closing brace when it sees json_schema; the cap is per call.
    assert kwargs["max_new_tokens"] == 192 and "properties" in kwargs["json_schema"]
    prompt = messages[-1].content
    assert "Today is 2024-06-01" in prompt and "most recent" in prompt
    assert prompt.index(DATA_OPEN) < prompt.index("Hemoglobin A1c (http://loinc.org|4548-4)") < prompt.index(DATA_CLOSE)


async def test_plan_repaired_once() -> None:
    model = scripted("I think you should look at labs.", GOOD_PLAN)
    turn = await plan(model)
    assert turn.plan.types == ["Observation"]
    assert turn.cost.calls == 2 and not turn.cost.degraded
    repair = model.calls[1][0]
    assert repair[-2].content == "I think you should look at labs."
    assert "Observation, Condition" in repair[-1].content


async def test_plan_falls_back_to_keywords_after_two_bad_replies() -> None:
    turn = await plan(scripted("no", '{"fetches": [{"resource_type": "Goal"}]}'))
    assert turn.cost.degraded and turn.cost.calls == 2
    assert turn.plan.types == ["Observation"]  # "HbA1c" is a lab word
    assert "after repair" in turn.cost.reason


async def test_model_error_degrades_and_is_recorded() -> None:
    turn = await plan(scripted(RuntimeError("server down")))
    assert turn.cost.degraded and turn.cost.error == "RuntimeError: server down"
    assert turn.cost.calls == 1  # the failed call counts
    assert turn.plan.types == ["Observation"]


async def test_answer_from_the_first_reply() -> None:
    model = scripted(GOOD_ANSWER)
    turn = await answer(model)
    assert turn.text == "HbA1c was 6.8 % [Observation/a1c-2023]."
    assert turn.cost.calls == 1 and not turn.cost.degraded
    prompt = model.calls[0][0][-1].content
    # Every fact is inside the data block, numbered.
    block = prompt[prompt.index(DATA_OPEN) : prompt.index(DATA_CLOSE)]
    assert "1. [Observation/a1c-2023]" in block and "2. [Condition/c-dm]" in block


async def test_answer_falls_back_to_extractive_with_valid_citations() -> None:
    turn = await answer(scripted("Sorry, I cannot.", '{"answer": "It is fine [Observation/none]."}'))
    assert turn.cost.degraded and turn.cost.calls == 2
    assert turn.text.startswith("Entries in the record most relevant")
    assert "[Observation/a1c-2023]" in turn.text and "none" not in turn.text


async def test_answer_without_facts_makes_no_call() -> None:
    model = scripted()
    turn = await answer(model, [])
    assert turn.cost.calls == 0 and not model.calls
    assert "no entries" in turn.text


async def test_a_model_that_rejects_generation_kwargs_is_called_plainly() -> None:
    class Strict(FakeListChatModel):
        async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
            if kwargs:
                raise TypeError(f"ainvoke() got an unexpected keyword argument {next(iter(kwargs))!r}")
            return await super().ainvoke(input, config)

    navigator = Navigator(Strict(responses=[GOOD_PLAN, GOOD_ANSWER]))
    window = resolve_window(QUESTION, NOW)
    turn = await navigator.plan(QUESTION, manifest=MANIFEST, catalog=CATALOG, window=window, now=NOW)
    assert turn.plan.types == ["Observation"] and turn.cost.calls == 1
    assert (await navigator.answer(QUESTION, FACTS, window=window, now=NOW)).cost.degraded is False


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        Navigator(scripted(), max_facts=0)
