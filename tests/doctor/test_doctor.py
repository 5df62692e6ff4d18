"""Doctor.decide against scripted fake models: repair, degrade, errors, forced diagnosis, metadata."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatResult

from agents.doctor import DifferentialEntry, Doctor, DoctorDecision, Exchange, decision_json_schema
from agents.doctor.fallbacks import NO_DIAGNOSIS
from agents.doctor.prompts import SAFE_QUESTION
from tests.doctor.fakes import decision_json, message_with_metadata, scripted

OBJECTIVE = "Assess and diagnose the patient presenting with fever and cough."
GOOD = decision_json("ask", "Do you have chest pain?", [("Pneumonia", 0.6), ("Bronchitis", 0.3)], "Pleurisy?")
GARBAGE = "!!! ??? ..."


async def test_good_reply_takes_one_call_with_schema_and_token_cap() -> None:
    model = scripted(GOOD)
    turn = await Doctor(model, max_new_tokens=123).decide(OBJECTIVE, [], 1, 8)
    assert (turn.decision.action, turn.decision.text) == ("ask", "Do you have chest pain?")
    assert turn.decision.differential[0] == DifferentialEntry(diagnosis="Pneumonia", probability=0.6)
    assert (turn.calls, turn.degraded, turn.forced, turn.error) == (1, False, False, None)
    assert turn.reply == GOOD
    assert turn.parse_reason == "parsed JSON object"
    [(_, kwargs)] = model.calls
    assert kwargs == {"max_new_tokens": 123, "json_schema": decision_json_schema()}


async def test_schema_hint_can_be_turned_off() -> None:
    model = scripted(GOOD)
    await Doctor(model, max_new_tokens=64, schema_hint=False).decide(OBJECTIVE, [], 1, 8)
    assert model.calls[0][1] == {"max_new_tokens": 64}


async def test_missing_metadata_reads_as_zero_and_none_and_time_is_measured() -> None:
    turn = await Doctor(scripted(GOOD)).decide(OBJECTIVE, [], 1, 8)
    assert (turn.input_tokens, turn.output_tokens, turn.model, turn.thinking) == (0, 0, None, None)
    assert turn.seconds > 0


async def test_metadata_is_summed_over_calls_and_thinking_joined() -> None:
    model = scripted(
        message_with_metadata(GARBAGE, input_tokens=100, output_tokens=7, thinking="first thought"),
        message_with_metadata(GOOD, input_tokens=130, output_tokens=40, thinking="second thought"),
    )
    turn = await Doctor(model).decide(OBJECTIVE, [], 1, 8)
    assert (turn.calls, turn.input_tokens, turn.output_tokens) == (2, 230, 47)
    assert turn.thinking == "first thought\n\nsecond thought"
    assert turn.model == "fake:medgemma"


async def test_leftover_thinking_is_stripped_from_the_stored_reply() -> None:
    model = scripted(f"<unused94>thought\nPneumonia is likely.<unused95>{GOOD}")
    turn = await Doctor(model).decide(OBJECTIVE, [], 1, 8)
    assert turn.reply == GOOD
    assert turn.thinking == "Pneumonia is likely."
    assert not turn.degraded


async def test_unusable_reply_is_repaired_with_one_extra_call() -> None:
    model = scripted(GARBAGE, GOOD)
    history = [Exchange('{"action": "ask", "text": "Since when?"}', "Two days.", "patient")]
    turn = await Doctor(model).decide(OBJECTIVE, history, 2, 8)
    assert (turn.calls, turn.degraded, turn.decision.text) == (2, False, "Do you have chest pain?")
    assert turn.reply == GOOD  # the usable reply is stored, never the garbage
    assert "after repair" in turn.parse_reason and "punctuation" in turn.parse_reason
    first, repair = model.calls[0][0], model.calls[1][0]
    assert repair[: len(first)] == first
    assert isinstance(repair[-2], AIMessage) and repair[-2].content == GARBAGE
    assert isinstance(repair[-1], HumanMessage) and "could not be used" in repair[-1].content


async def test_two_unusable_replies_degrade_to_the_safe_question() -> None:
    prior = [DifferentialEntry(diagnosis="Influenza", probability=0.5)]
    turn = await Doctor(scripted(GARBAGE, "")).decide(OBJECTIVE, [], 1, 8, prior_differential=prior)
    assert turn.degraded and not turn.forced and turn.error is None
    assert (turn.decision.action, turn.decision.text, turn.calls) == ("ask", SAFE_QUESTION, 2)
    assert turn.decision.differential == prior
    # The stored reply is the synthesised decision in the JSON the model is asked for, so replay stays well-formed.
    assert DoctorDecision.model_validate_json(turn.reply) == turn.decision
    assert "empty reply" in turn.parse_reason


async def test_model_error_degrades_and_is_recorded() -> None:
    turn = await Doctor(scripted(ConnectionError("server went away"))).decide(OBJECTIVE, [], 1, 8)
    assert turn.degraded and turn.calls == 1
    assert turn.error == "ConnectionError: server went away"
    assert turn.decision.text == SAFE_QUESTION
    assert turn.parse_reason == "model error"


async def test_error_during_repair_degrades_and_keeps_first_call_count() -> None:
    turn = await Doctor(scripted(GARBAGE, TimeoutError("slow"))).decide(OBJECTIVE, [], 1, 8)
    assert turn.degraded and turn.calls == 2 and turn.error == "TimeoutError: slow"


class _HangingModel(GenericFakeChatModel):
    """Never answers: the call waits until the consultation is cancelled."""

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        await asyncio.sleep(60)
        raise AssertionError("unreachable: the test cancels the call first")


async def test_cancellation_propagates() -> None:
    task = asyncio.create_task(Doctor(_HangingModel(messages=iter([]))).decide(OBJECTIVE, [], 1, 8))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_last_turn_forces_diagnosis_from_the_replys_differential() -> None:
    model = scripted(GOOD)  # the model keeps asking on its final turn
    turn = await Doctor(model).decide(OBJECTIVE, [], 8, 8)
    assert (turn.decision.action, turn.decision.text, turn.forced, turn.degraded) == (
        "diagnose",
        "Pneumonia",
        True,
        False,
    )
    assert turn.calls == 1  # no extra call is spent on forcing
    assert "final turn" in model.calls[0][0][-1].content.lower()


async def test_last_turn_forced_from_prior_differential_when_reply_has_none() -> None:
    prior = [{"diagnosis": "Tuberculosis", "probability": 0.4}, {"diagnosis": "Lung cancer", "probability": "45%"}]
    model = scripted(decision_json("test", "Sputum culture"))
    turn = await Doctor(model).decide(OBJECTIVE, [], 3, 3, prior_differential=prior)
    assert (turn.decision.action, turn.decision.text, turn.forced) == ("diagnose", "Lung cancer", True)


async def test_last_turn_degraded_still_diagnoses() -> None:
    turn = await Doctor(scripted(GARBAGE, GARBAGE)).decide(OBJECTIVE, [], 5, 5)
    assert (turn.decision.action, turn.decision.text) == ("diagnose", NO_DIAGNOSIS)
    assert turn.forced and turn.degraded
    assert json.loads(turn.reply)["action"] == "diagnose"


async def test_last_turn_real_diagnosis_is_not_forced() -> None:
    turn = await Doctor(scripted(decision_json("diagnose", "Legionnaires disease"))).decide(OBJECTIVE, [], 8, 8)
    assert (turn.decision.text, turn.forced) == ("Legionnaires disease", False)


async def test_early_diagnosis_is_respected() -> None:
    turn = await Doctor(scripted("DIAGNOSIS READY: Pneumonia")).decide(OBJECTIVE, [], 2, 8)
    assert (turn.decision.action, turn.decision.text, turn.forced) == ("diagnose", "Pneumonia", False)


async def test_stock_fake_list_model_works_without_metadata() -> None:
    model = FakeListChatModel(responses=["REQUEST TEST: Chest X-ray"])
    turn = await Doctor(model).decide(OBJECTIVE, [], 1, 8)
    assert (turn.decision.action, turn.decision.text, turn.calls) == ("test", "Chest X-ray", 1)


class _StrictModel(FakeListChatModel):
    """Like a client that forwards unknown kwargs to an API that rejects them."""

    def _call(self, *args: Any, **kwargs: Any) -> str:
        unknown = set(kwargs) - {"run_manager", "stop"}
        if unknown:
            raise TypeError(f"create() got an unexpected keyword argument '{max(unknown)}'")
        return super()._call(*args, **kwargs)


async def test_model_rejecting_generation_kwargs_is_called_without_them() -> None:
    model = _StrictModel(responses=[GOOD])
    doctor = Doctor(model)
    first = await doctor.decide(OBJECTIVE, [], 1, 8)
    second = await doctor.decide(OBJECTIVE, [], 1, 8)
    assert not first.degraded and not second.degraded
    assert first.error is None and first.decision.text == "Do you have chest pain?"


async def test_other_type_errors_are_recorded_not_retried_plainly() -> None:
    turn = await Doctor(scripted(TypeError("'NoneType' object is not subscriptable"))).decide(OBJECTIVE, [], 1, 8)
    assert turn.degraded and turn.calls == 1 and turn.error is not None and "NoneType" in turn.error


@pytest.mark.parametrize(("turn", "max_turns"), [(0, 8), (1, 0)])
async def test_invalid_turn_numbers_are_rejected(turn: int, max_turns: int) -> None:
    with pytest.raises(ValueError):
        await Doctor(scripted(GOOD)).decide(OBJECTIVE, [], turn, max_turns)


async def test_final_reply_copying_the_fallback_note_is_forced_from_its_differential() -> None:
    from agents.doctor.fallbacks import FALLBACK_RATIONALE

    copied = decision_json("diagnose", FALLBACK_RATIONALE, [("Acute myocardial infarction", 0.7)], "r")
    turn = await Doctor(scripted(copied, copied)).decide(OBJECTIVE, [], 3, 3)
    assert turn.decision.action == "diagnose" and turn.forced
    assert turn.decision.text == "Acute myocardial infarction"
