"""The ``clinicflow`` protocol's second judge: a 5-point rubric beside the yes/no verdict.

A proposed diagnosis earns one point per criterion in ``RUBRIC_CRITERIA`` (core disease, etiology, site,
specificity, completeness); ``RUBRIC_PASS`` or more counts as correct. A clear textual match
(``simulations.judge.exact_match``) scores full marks without a model; otherwise the model is asked for a JSON
object, read tolerantly by ``parse_rubric`` (JSON anywhere in the reply, or "Criterion: score" lines), asked once
more strictly if unreadable, and left ``unparsed`` (``correct=None``, never a silent False) if still unreadable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from agents.json_objects import load_object, scan_objects
from simulations.judge import exact_match
from simulations.llm import Usage, ask_until_parsed
from simulations.prompts import load_prompt

RUBRIC_CRITERIA: tuple[str, ...] = ("core_disease", "etiology", "site", "specificity", "completeness")
RUBRIC_PASS = 4  # a total of 4 or more of the 5 criteria counts as correct
RUBRIC_MAX_NEW_TOKENS = 120
RubricMethod = Literal["exact", "model", "model_retry", "unparsed", "no_diagnosis"]

# Criterion names folded to letters only ("Core disease", "core-disease", "CORE_DISEASE" -> "coredisease").
_KEYS = {"coredisease": "core_disease", "etiology": "etiology", "aetiology": "etiology", "site": "site",
         "specificity": "specificity", "completeness": "completeness"}
_LINE = re.compile(
    r"^[\s\-*#>\d.)\"'`{,]*(core[\s_-]*disease|a?etiology|site|specificity|completeness)[\s*_\"'`]*"
    r"(?:\([^)\n]*\)\s*)?[:=\-\u2013\u2014]+\s*(.+)$",
    re.IGNORECASE | re.MULTILINE,
)
_FRACTION = re.compile(r"^(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?")
_YES = ("yes", "true", "met", "pass", "y", "correct")
_NO = ("no", "not", "false", "unmet", "fail", "n", "incorrect")
_NESTED_SCORE_KEYS = ("score", "value", "points", "point")
# The rubric counts "not applicable" (no site, no stated cause) as met; read before "not" can mean 0.
_NOT_APPLICABLE = re.compile(r"^(?:n/a\b|n\.a\.|not applicable\b)")


def _clamp(number: float) -> int | None:
    """0.0-1.0 rounded half up, clamped to 0/1; None for NaN or infinity."""
    if not math.isfinite(number):
        return None
    return min(max(math.floor(number + 0.5), 0), 1)


def _score(value: Any) -> int | None:
    """One criterion's value as 0 or 1: numbers, booleans, "yes"/"no", "1/1", {"score": 1}; None if unreadable."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return _clamp(float(value))
    if isinstance(value, Mapping):
        found = next((value[k] for k in _NESTED_SCORE_KEYS if k in value), None)
        return None if found is None or isinstance(found, Mapping) else _score(found)
    if not isinstance(value, str):
        return None
    text = value.strip().lower().strip("*_\"'` ")
    fraction = _FRACTION.match(text)
    if fraction:
        denominator = float(fraction.group(2))
        return _clamp(float(fraction.group(1)) / denominator) if denominator else None
    if _NOT_APPLICABLE.match(text):
        return 1
    number = _NUMBER.match(text)
    if number:
        return _clamp(float(number.group()))
    words = re.findall(r"[a-z]+", text)
    if not words:
        return None
    if words[0] in _NO:
        return 0
    return 1 if words[0] in _YES else None


def _from_mapping(obj: Mapping[str, Any], into: dict[str, int]) -> None:
    for key, value in obj.items():
        criterion = _KEYS.get(re.sub(r"[^a-z]", "", str(key).lower()))
        if criterion is None:
            if isinstance(value, Mapping):  # {"scores": {...}}: one level of wrapping
                _from_mapping(value, into)
            continue
        score = _score(value)
        if score is not None:
            into.setdefault(criterion, score)


def parse_rubric(text: str) -> dict[str, int] | None:
    """The five criterion scores (0/1) read from a model's reply, or None unless all five could be read.

    JSON objects anywhere in the text are read first (keys compared ignoring case, spaces and underscores); lines
    such as "Core disease: 1", "Etiology - yes" or "Site: 1/1" fill in what they left out.
    """
    found: dict[str, int] = {}
    for start, end, complete in scan_objects(text):
        obj = load_object(text[start:end]) if complete else None
        if obj is not None:
            _from_mapping(obj, found)
    for name, value in _LINE.findall(text):
        score = _score(value)
        if score is not None:
            found.setdefault(_KEYS[re.sub(r"[^a-z]", "", name.lower())], score)
    if not all(c in found for c in RUBRIC_CRITERIA):
        return None
    return {c: found[c] for c in RUBRIC_CRITERIA}


class RubricResult(BaseModel):
    """The rubric judge's scores on one diagnosis, with what it cost."""

    model_config = ConfigDict(frozen=True)

    scores: dict[str, int] = Field(default_factory=dict, description="criterion -> 0/1; empty when unparsed")
    total: int | None = Field(default=None, description="sum of the scores; None when unparsed")
    correct: bool | None = Field(default=None, description=f"total >= {RUBRIC_PASS}; None when unparsed")
    method: RubricMethod
    raw: str = Field(default="", description="the model's answer(s), attempts separated by a '---' line")
    usage: Usage = Field(default_factory=Usage)


def _fill(template: str, **values: str) -> str:
    # One pass, so a diagnosis that happens to contain "{proposed}" is not substituted into again; the JSON
    # example's braces in the prompt are left alone.
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def _scored(scores: dict[str, int], method: RubricMethod, raw: str, usage: Usage) -> RubricResult:
    total = sum(scores.values())
    return RubricResult(scores=scores, total=total, correct=total >= RUBRIC_PASS, method=method, raw=raw, usage=usage)


class RubricJudge:
    """Scores a proposed diagnosis against the correct one on the five rubric criteria."""

    def __init__(self, model: BaseChatModel, *, max_new_tokens: int = RUBRIC_MAX_NEW_TOKENS) -> None:
        self.model = model
        self.max_new_tokens = max_new_tokens

    async def score(self, correct_diagnosis: str, proposed: str | None) -> RubricResult:
        if not proposed or not proposed.strip():
            return _scored(dict.fromkeys(RUBRIC_CRITERIA, 0), "no_diagnosis", "", Usage())
        if exact_match(correct_diagnosis, proposed):
            return _scored(dict.fromkeys(RUBRIC_CRITERIA, 1), "exact", "", Usage())
        values = {"correct": correct_diagnosis.strip(), "proposed": proposed.strip()}
        asked = await ask_until_parsed(
            self.model,
            load_prompt("rubric_system"),
            [(method, _fill(load_prompt(template), **values))
             for method, template in (("model", "rubric"), ("model_retry", "rubric_retry"))],
            parse_rubric,
            max_new_tokens=self.max_new_tokens,
        )
        if asked.value is None:
            return RubricResult(method="unparsed", raw=asked.raw, usage=asked.usage)
        return _scored(asked.value, asked.label, asked.raw, asked.usage)  # type: ignore[arg-type]
