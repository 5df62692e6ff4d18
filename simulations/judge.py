"""The judge (AgentClinic's moderator): is the doctor's diagnosis the same disease as the case's?

Upstream counted only an exact lower-case "yes", so "Yes." scored as wrong. Here a clear textual match is decided
without a model, the model's answer is parsed tolerantly, an unparseable answer is asked again once more strictly,
and if it still cannot be read the verdict is ``correct=None`` ("unjudged"), never a silent False.
"""

from __future__ import annotations

import re
from typing import Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from simulations.llm import Usage, ask_until_parsed
from simulations.prompts import load_prompt
from simulations.textnorm import fold

JUDGE_MAX_NEW_TOKENS = 8
VerdictMethod = Literal["exact", "model", "model_retry", "unjudged", "no_diagnosis"]

_YES = {"yes", "yeah", "yep", "y", "correct", "true", "same"}
_NO = {"no", "nope", "n", "incorrect", "false", "different", "differ"}
_AMBIGUOUS = re.compile(r"\byes (?:and|or) no\b|\bno (?:and|or) yes\b|\b(?:not sure|unsure|cannot tell|can t tell)\b")
_NEGATIVE = re.compile(
    r"\b(?:not|isn t|aren t|is not|are not) (?:the )?same\b|\bdiffer(?:ent|s)?\b|\bnot (?:a )?match|"
    r"\b(?:does not|do not|doesn t|don t) match\b|\bnot equivalent\b"
)
_ANSWER_IS = re.compile(r"\banswer (?:is )?(yes|no)\b")
# Abbreviations with one reading in a diagnosis (not "MS" or "PE"); STEMI and NSTEMI are left alone because one
# written out would contain the other.
_ABBREVIATIONS = {
    "mi": "myocardial infarction", "dka": "diabetic ketoacidosis", "sah": "subarachnoid hemorrhage",
    "dvt": "deep vein thrombosis", "copd": "chronic obstructive pulmonary disease", "uti": "urinary tract infection",
    "chf": "congestive heart failure", "sle": "systemic lupus erythematosus", "aki": "acute kidney injury",
    "ckd": "chronic kidney disease", "gerd": "gastroesophageal reflux disease", "tia": "transient ischemic attack",
    "als": "amyotrophic lateral sclerosis", "aaa": "abdominal aortic aneurysm", "pcos": "polycystic ovary syndrome",
    "bph": "benign prostatic hyperplasia", "cap": "community acquired pneumonia",
}
# British to American spelling on both sides: haemorrhage, oedema, diarrhoea, tumour.
_SPELLING = re.compile(r"(?<=\w)(?:ae|oe)(?=\w)|(?<=\w)our$|^(?:ae|oe)(?=\w)")
# A proposed diagnosis that hedges or negates cannot be accepted by string containment alone.
_HEDGES = set("not no unlikely versus vs or rule ruled excluded without differential either".split())


class Verdict(BaseModel):
    """The judge's decision on one case, with what it cost."""

    correct: bool | None = Field(description="True/False, or None when the judge's answer could not be read")
    raw: str = Field(description="the judge model's answer(s), attempts separated by a '---' line; empty for exact")
    method: VerdictMethod
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0


def parse_verdict(text: str) -> bool | None:
    """Read a Yes/No answer tolerantly ("Yes.", "**Yes**", "No, different", "The answer is yes"); None if unclear."""
    folded = fold(text)
    if not folded or _AMBIGUOUS.search(folded):
        return None
    first = folded.split()[0]
    if first in _YES:
        return True
    if first in _NO:
        return False
    if _NEGATIVE.search(folded):
        return False
    stated = _ANSWER_IS.search(folded)
    if stated:
        return stated.group(1) == "yes"
    words = set(folded.split())
    if ("yes" in words) != ("no" in words):
        return "yes" in words
    return None


def exact_match(correct: str, proposed: str) -> bool:
    """Whether the correct diagnosis appears, whole-word, in a proposal that does not hedge or negate.

    Both sides are compared in one spelling (British "haemorrhage" = "hemorrhage") with unambiguous abbreviations
    written out ("DKA" = "diabetic ketoacidosis"), so the shortcut does not hinge on a weak judge model.
    """
    wanted, given = _judge_form(correct), _judge_form(proposed)
    hedges = (_HEDGES & set(given.split())) - set(wanted.split())
    return bool(wanted) and f" {wanted} " in f" {given} " and not hedges


def _judge_form(text: str) -> str:
    words = (_ABBREVIATIONS.get(w, w) for w in fold(text).split())
    return " ".join(_SPELLING.sub(lambda m: "or" if m.group(0) == "our" else "e", w) for w in " ".join(words).split())


class Judge:
    """Decides whether a proposed diagnosis names the correct disease."""

    def __init__(self, model: BaseChatModel, *, max_new_tokens: int = JUDGE_MAX_NEW_TOKENS) -> None:
        self.model = model
        self.max_new_tokens = max_new_tokens

    async def verdict(self, correct_diagnosis: str, proposed: str | None) -> Verdict:
        if not proposed or not proposed.strip():
            return Verdict(correct=False, raw="", method="no_diagnosis")
        if exact_match(correct_diagnosis, proposed):
            return Verdict(correct=True, raw="", method="exact")
        values = {"correct": correct_diagnosis.strip(), "proposed": proposed.strip()}
        asked = await ask_until_parsed(
            self.model,
            load_prompt("judge_system"),
            [(method, load_prompt(template).format(**values))
             for method, template in (("model", "judge"), ("model_retry", "judge_retry"))],
            parse_verdict,
            max_new_tokens=self.max_new_tokens,
        )
        method: VerdictMethod = asked.label if asked.value is not None else "unjudged"  # type: ignore[assignment]
        return _verdict(asked.value, asked.answers, method, asked.usage)


def _verdict(correct: bool | None, attempts: list[str], method: VerdictMethod, usage: Usage) -> Verdict:
    return Verdict(
        correct=correct,
        raw="\n---\n".join(attempts),
        method=method,
        model=usage.model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        seconds=usage.seconds,
        calls=usage.calls,
    )
