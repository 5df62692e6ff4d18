"""The simulated patient: the chat it is given, and the deterministic clean-up of what it says."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from simulations.patient import FALLBACK_ANSWER, PatientActor, clean_answer, patient_biases

DIALOGUE = [
    {"turn": 1, "role": "doctor", "text": "What brings you in?", "action": "ask"},
    {"turn": 1, "role": "patient", "text": "My big toe hurts."},
    {"turn": 2, "role": "doctor", "text": "CBC", "action": "test"},
    {"turn": 2, "role": "measurement", "text": "RESULTS: WBC 11,200"},
    {"turn": 3, "role": "doctor", "text": "When did it start?", "action": "ask"},
]


def test_messages_are_the_patients_own_exchanges(gout_case, scripted):
    actor = PatientActor(scripted(), gout_case)
    messages = actor.messages("When did it start?", DIALOGUE)
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage, AIMessage, HumanMessage]
    # The graph has already appended this question: it is asked once, and tests never reach the patient.
    assert [m.content for m in messages[1:]] == ["What brings you in?", "My big toe hurts.", "When did it start?"]
    assert "52-year-old man" in messages[0].content and "Gout" not in messages[0].content


def test_messages_grow_only_at_the_end(gout_case, scripted):
    actor = PatientActor(scripted(), gout_case)
    before = actor.messages("When did it start?", DIALOGUE)
    later = [*DIALOGUE, {"turn": 3, "role": "patient", "text": "Last night."}]
    after = actor.messages("Any fever?", later)
    assert [m.content for m in after[: len(before)]] == [m.content for m in before]
    assert after[-1].content == "Any fever?"


def test_repeated_questions_are_folded_to_keep_turns_alternating(gout_case, scripted):
    dialogue = [
        {"turn": 1, "role": "doctor", "text": "Any fever?", "action": "ask"},
        {"turn": 2, "role": "doctor", "text": "Any rash?"},
    ]
    messages = PatientActor(scripted(), gout_case).messages("Any trauma?", dialogue)
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage]
    assert messages[1].content == "Any fever?\nAny rash?\nAny trauma?"


async def test_answer_is_cleaned_and_costed(gout_case, scripted):
    model = scripted("Patient: It started last night. It woke me up. It is very red. It hurts to walk.\n"
                     "Doctor: Anything else?")
    reply = await PatientActor(model, gout_case).answer("When did it start?", DIALOGUE)
    assert reply.text == "It started last night. It woke me up. It is very red."
    assert (reply.usage.model, reply.usage.input_tokens, reply.usage.output_tokens) == ("scripted:test", 101, 7)
    assert reply.usage.seconds == 0.25 and reply.usage.calls == 1
    assert model.kwargs_seen[0]["max_new_tokens"] == 80


async def test_blurted_diagnosis_is_redacted_and_counted(gout_case, scripted):
    actor = PatientActor(scripted("I think it's GOUT, like my dad.", "My gout-y toe? No idea."), gout_case)
    first = await actor.answer("What do you think it is?")
    assert first.text == "I think it's [redacted], like my dad." and first.redactions == 1
    second = await actor.answer("Anything else?")
    assert "gout" not in second.text.lower() and second.redactions == 1
    assert actor.redactions == 2


async def test_empty_answer_falls_back(gout_case, scripted):
    reply = await PatientActor(scripted("  \n"), gout_case).answer("Hello?")
    assert reply.text == FALLBACK_ANSWER and reply.fallback


async def test_models_without_metadata_are_timed_here(gout_case):
    model = GenericFakeChatModel(messages=iter([AIMessage(content="It hurts.")]))
    reply = await PatientActor(model, gout_case).answer("Where does it hurt?")
    assert reply.text == "It hurts."
    assert reply.usage.model is None and reply.usage.input_tokens == 0 and reply.usage.calls == 1
    assert reply.usage.seconds > 0


def test_bias_adds_its_sentence(gout_case, scripted):
    biased = PatientActor(scripted(), gout_case, bias="self_diagnosis").system_prompt()
    assert patient_biases()["self_diagnosis"] in biased
    assert len(patient_biases()) == 11
    with pytest.raises(ValueError, match="unknown patient bias 'grumpy'"):
        PatientActor(scripted(), gout_case, bias="grumpy")


def test_clean_answer():
    assert clean_answer('**Patient:** "Yes, since Monday."') == "Yes, since Monday."
    assert clean_answer("One. Two! Three? Four.") == "One. Two! Three?"
