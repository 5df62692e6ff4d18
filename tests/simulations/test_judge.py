"""The judge: robust verdict parsing, the deterministic shortcut, and an honest "unjudged"."""

from __future__ import annotations

import pytest

from simulations.judge import Judge, exact_match, parse_verdict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes", True),
        ("Yes.", True),  # upstream scored this as wrong
        ("yes, same disease", True),
        ("**Yes**", True),
        ("  YES!  ", True),
        ("The answer is yes", True),
        ("Answer: Yes", True),
        ("Same disease.", True),
        ("No", False),
        ("no.", False),
        ("No, they are different diseases.", False),
        ("Not the same", False),
        ("They are not the same disease.", False),
        ("The diagnoses differ", False),
        ("The answer is no", False),
        ("**No**", False),
        ("", None),
        ("   ", None),
        ("Maybe", None),
        ("Yes and no", None),
        ("I'm not sure", None),
        ("The doctor's diagnosis is plausible", None),
    ],
)
def test_parse_verdict(text, expected):
    assert parse_verdict(text) is expected


@pytest.mark.parametrize(
    ("correct", "proposed", "expected"),
    [
        ("Myasthenia gravis", "Myasthenia Gravis", True),
        ("Myasthenia gravis", "Ocular myasthenia gravis.", True),
        ("Hirschsprung’s disease", "Hirschsprung's disease", True),
        ("Gout", "Pseudogout", False),
        ("Myasthenia gravis", "Not myasthenia gravis; Lambert-Eaton syndrome", False),
        ("Myasthenia gravis", "Myasthenia gravis or Lambert-Eaton syndrome", False),
        ("Pneumonia without effusion", "Pneumonia without effusion", True),
        ("Subarachnoid hemorrhage", "Subarachnoid haemorrhage", True),
        ("Subarachnoid hemorrhage", "SAH", True),
        ("Diabetic ketoacidosis", "DKA, severe", True),
        ("Community-acquired pneumonia", "Right lower lobe CAP", True),
        ("Coeliac disease", "Celiac disease", True),
        ("STEMI", "NSTEMI", False),
        ("Acute inferior myocardial infarction", "Inferior STEMI", False),  # left to the model
    ],
)
def test_exact_match(correct, proposed, expected):
    assert exact_match(correct, proposed) is expected


async def test_exact_match_needs_no_model(scripted):
    model = scripted()
    verdict = await Judge(model).verdict("Gout", "Acute gout of the first MTP joint")
    assert (verdict.correct, verdict.method, verdict.calls) == (True, "exact", 0)
    assert model.seen == []


async def test_model_verdict_yes_with_punctuation(scripted):
    model = scripted("Yes.")
    verdict = await Judge(model).verdict("Acute inferior myocardial infarction", "Inferior STEMI")
    assert verdict.correct is True and verdict.method == "model" and verdict.raw == "Yes."
    assert (verdict.model, verdict.calls, verdict.input_tokens, verdict.seconds) == ("scripted:test", 1, 101, 0.25)
    prompt = model.seen[0][-1].content
    assert "Acute inferior myocardial infarction" in prompt and "Inferior STEMI" in prompt
    assert model.kwargs_seen[0]["max_new_tokens"] == 8


async def test_model_verdict_no(scripted):
    verdict = await Judge(scripted("No, different disease")).verdict("Gout", "Septic arthritis")
    assert verdict.correct is False and verdict.method == "model"


async def test_unreadable_answer_is_retried_strictly(scripted):
    model = scripted("Hmm, let me think", "**Yes**")
    verdict = await Judge(model).verdict("Gout", "Podagra")
    assert (verdict.correct, verdict.method, verdict.calls) == (True, "model_retry", 2)
    assert verdict.raw == "Hmm, let me think\n---\n**Yes**"
    assert verdict.input_tokens == 101 + 102
    assert "exactly one word" in model.seen[1][-1].content


async def test_still_unreadable_is_unjudged_not_false(scripted):
    verdict = await Judge(scripted("Possibly", "")).verdict("Gout", "Podagra")
    assert verdict.correct is None and verdict.method == "unjudged"
    assert verdict.raw == "Possibly\n---\n" and verdict.calls == 2


@pytest.mark.parametrize("proposed", [None, "", "   "])
async def test_no_diagnosis_is_wrong_without_a_model(scripted, proposed):
    verdict = await Judge(scripted()).verdict("Gout", proposed)
    assert verdict.correct is False and verdict.method == "no_diagnosis"
