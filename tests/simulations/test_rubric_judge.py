"""The 5-point rubric judge: tolerant parse, pass mark, exact shortcut, retry and unparsed paths."""

from __future__ import annotations

import pytest

from simulations.bench.records import RUBRIC_CRITERIA as RECORDED_CRITERIA
from simulations.bench.records import RUBRIC_PASS as RECORDED_PASS
from simulations.prompts import load_prompt
from simulations.rubric import RUBRIC_CRITERIA, RUBRIC_PASS, RubricJudge, parse_rubric

ALL = dict.fromkeys(RUBRIC_CRITERIA, 1)


def test_criteria_and_pass_mark_agree_with_the_records():
    assert RUBRIC_CRITERIA == ("core_disease", "etiology", "site", "specificity", "completeness")
    assert (RUBRIC_CRITERIA, RUBRIC_PASS) == (RECORDED_CRITERIA, RECORDED_PASS) and RUBRIC_PASS == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"core_disease": 1, "etiology": 1, "site": 1, "specificity": 0, "completeness": 1}',
         {**ALL, "specificity": 0}),
        (('Here you go:\n```json\n{"Core Disease": true, "ETIOLOGY": "yes", "site": 0.8, "Specificity": "0",'
          ' "completeness": 2}\n```\nThe diagnosis is close.'), {**ALL, "specificity": 0}),
        (('{"scores": {"core-disease": "No", "etiology": -1, "site": "n/a", "specificity": 0.2, '
          '"completeness": {"score": 1, "why": "ok"}}}'),
         {"core_disease": 0, "etiology": 0, "site": 1, "specificity": 0, "completeness": 1}),
        ("1. Core disease: 1\n2. Etiology - yes\n**Site**: 1/1\n- Specificity (as specific?): 0\nCompleteness = no",
         {**ALL, "specificity": 0, "completeness": 0}),
        # A reply cut off mid-object: the complete lines still count.
        ('{"core_disease": 1,\n "etiology": 0,\n "site": 1,\n "specificity": 1,\n "completeness": 1',
         {**ALL, "etiology": 0}),
    ],
)
def test_parse_reads_json_and_lines(text, expected):
    assert parse_rubric(text) == expected


@pytest.mark.parametrize(
    "text",
    ['{"core_disease": 1, "etiology": 1, "site": 1, "specificity": 1}', "Core disease: 1\nSite: maybe", "", "Yes"],
)
def test_parse_needs_all_five_criteria(text):
    assert parse_rubric(text) is None


async def test_model_scores_and_the_pass_mark(scripted):
    model = scripted('{"core_disease": 1, "etiology": 1, "site": 1, "specificity": 1, "completeness": 0}',
                     '{"core_disease": 1, "etiology": 0, "site": 1, "specificity": 1, "completeness": 0}')
    judge = RubricJudge(model)
    four = await judge.score("Community-acquired pneumonia", "Lobar pneumonia")
    assert (four.total, four.correct, four.method, four.usage.calls) == (4, True, "model", 1)
    assert four.usage.model == "scripted:test" and four.raw.startswith('{"core_disease": 1')
    three = await judge.score("Streptococcal pneumonia", "Pneumonia")
    assert (three.total, three.correct) == (3, False)
    system, user = model.seen[0]
    assert "core_disease" in system.content and "core_disease" in user.content
    for line in ("- core_disease: it names the same disease", "- etiology:", "- site:", "- specificity:",
                 "- completeness:"):
        assert line in user.content
    assert "Correct diagnosis: Community-acquired pneumonia" in user.content
    assert "Doctor's diagnosis: Lobar pneumonia" in user.content
    assert model.kwargs_seen[0] == {"max_new_tokens": 120}


async def test_exact_match_and_no_diagnosis_skip_the_model(scripted):
    judge = RubricJudge(scripted())
    exact = await judge.score("Gout", "Acute gout")
    assert (exact.scores, exact.total, exact.correct, exact.method) == (ALL, 5, True, "exact")
    assert exact.usage.calls == 0
    for proposed in ("", "   ", None):
        none = await judge.score("Gout", proposed)
        assert (none.total, none.correct, none.method) == (0, False, "no_diagnosis")


async def test_an_unreadable_answer_is_retried_once_more_strictly(scripted):
    model = scripted("They look about the same to me.", "core_disease: 1, etiology: 1\n"
                     '{"core_disease": 1, "etiology": 1, "site": 1, "specificity": 1, "completeness": 1}')
    result = await RubricJudge(model).score("Myasthenia gravis", "Ocular myasthenia")
    assert (result.method, result.total, result.correct, result.usage.calls) == ("model_retry", 5, True, 2)
    assert result.raw.startswith("They look about the same to me.\n---\n")
    assert "Reply with nothing but one JSON object" in model.seen[1][1].content


async def test_still_unreadable_is_unparsed_never_false(scripted):
    result = await RubricJudge(scripted("Hmm.", "I am not sure.")).score("Gout", "Pseudogout")
    assert (result.scores, result.total, result.correct, result.method) == ({}, None, None, "unparsed")
    assert result.raw == "Hmm.\n---\nI am not sure." and result.usage.calls == 2


def test_a_reply_that_copies_the_prompts_template_is_not_a_score() -> None:
    # Small models copy the form they are shown; a copied template must not read as a (passing) score.
    template = next(line for line in load_prompt("rubric").splitlines() if line.startswith("{"))
    assert parse_rubric(template) is None
