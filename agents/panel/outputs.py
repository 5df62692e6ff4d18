"""Each panel role's structured output, tolerant of how models write it, and its JSON Schema for constrained decoding.

As with the doctor's decision (``agents.doctor.decision``), normalisation lives in the validators: common synonym
keys are renamed, a string stands for a one-item list, probabilities read as fractions or percentages, and the
differential comes out sorted, deduplicated and capped at five. Whatever parses here is fit to use.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.doctor.decision import MAX_DIFFERENTIAL, is_placeholder, normalise_probability
from agents.json_schemas import strict_json_schema

__all__ = [
    "ROLES",
    "ROLE_OUTPUTS",
    "Challenge",
    "ChecklistView",
    "HypothesisView",
    "ProposedTest",
    "RankedDiagnosis",
    "RoleName",
    "StewardshipView",
    "Substitution",
    "TestChoice",
    "role_json_schema",
]

RoleName = Literal["hypothesis", "test_chooser", "challenger", "stewardship", "checklist"]
ROLES: tuple[RoleName, ...] = ("hypothesis", "test_chooser", "challenger", "stewardship", "checklist")

MAX_TESTS = 3  # MAI-DxO's test chooser proposes up to three per round


def _key(name: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


def _renamed(data: Any, synonyms: Mapping[str, tuple[str, ...]]) -> Any:
    """``data`` with keys normalised ("Next Step" -> next_step) and synonyms renamed to field names; the field's own
    name wins over a synonym."""
    if not isinstance(data, Mapping):
        return data
    out = {_key(k): v for k, v in data.items()}
    for field, names in synonyms.items():
        if field not in out:
            found = next((n for n in names if n in out), None)
            if found is not None:
                out[field] = out.pop(found)
    return out


def _items(value: Any) -> list[Any]:
    """A list from a list, a lone value, or nothing; empty and placeholder strings dropped."""
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    return [i for i in items if not (isinstance(i, str) and (not i.strip() or is_placeholder(i)))]


def _strings(value: Any) -> list[str]:
    return [str(v).strip() for v in _items(value) if isinstance(v, (str, int, float)) and not isinstance(v, bool)]


def _text(value: Any) -> Any:
    """A stripped string; a placeholder copied from the prompt's example ("<test>") counts as empty."""
    if isinstance(value, str):
        value = value.strip()
        return "" if is_placeholder(value) else value
    return "" if value is None else value


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True)


class RankedDiagnosis(_Output):
    diagnosis: str = Field(min_length=1, description="A specific disease name.")
    probability: float = Field(ge=0.0, le=1.0, description="How likely, from 0 to 1.")
    evidence: list[str] = Field(default_factory=list, description="Ids of the findings that support it, e.g. F2.")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"diagnosis": data, "probability": 0.0}
        return _renamed(data, {"diagnosis": ("name", "condition", "dx", "disease"),
                               "probability": ("prob", "p", "likelihood", "confidence"),
                               "evidence": ("findings", "supporting_findings", "support")})

    _diagnosis = field_validator("diagnosis", mode="before")(lambda v: v.strip() if isinstance(v, str) else v)
    _probability = field_validator("probability", mode="before")(lambda v: normalise_probability(v))
    _evidence = field_validator("evidence", mode="before")(lambda v: _strings(v))


def _differential(value: Any) -> list[Any]:
    if isinstance(value, Mapping):  # {"Pneumonia": 0.6, "Bronchitis": 0.3}
        value = [{"diagnosis": k, "probability": v} for k, v in value.items()]
    entries: list[RankedDiagnosis] = []
    seen: set[str] = set()
    for item in _items(value):
        try:
            entry = RankedDiagnosis.model_validate(item)
        except ValueError:  # an item naming no diagnosis is dropped, the rest kept
            continue
        if is_placeholder(entry.diagnosis) or entry.diagnosis.casefold() in seen:
            continue
        seen.add(entry.diagnosis.casefold())
        entries.append(entry)
    entries.sort(key=lambda e: e.probability, reverse=True)
    return entries[:MAX_DIFFERENTIAL]


_NEXT_STEPS = {"ask": "ask", "question": "ask", "questions": "ask", "test": "test", "tests": "test",
               "order_test": "test", "diagnose": "diagnose", "diagnosis": "diagnose", "commit": "diagnose"}


class HypothesisView(_Output):
    """The probability-ranked differential, what moved it, and the step the hypothesis role would take next."""

    differential: list[RankedDiagnosis] = Field(
        min_length=1, max_length=MAX_DIFFERENTIAL, description="Up to 5 diagnoses, most likely first."
    )
    moved_by: list[str] = Field(default_factory=list, description="Ids of the findings that changed it this turn.")
    next_step: Literal["ask", "test", "diagnose"] = Field(default="ask", description='"ask", "test" or "diagnose".')
    question: str = Field(default="", description='The question for the patient when next_step is "ask".')

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return _renamed(data, {"differential": ("ddx", "differential_diagnosis", "diagnoses", "hypotheses"),
                               "moved_by": ("changed_by", "new_evidence", "updated_by"),
                               "next_step": ("action", "next_action", "step"),
                               "question": ("question_to_patient", "ask")})

    _differential = field_validator("differential", mode="before")(lambda v: _differential(v))
    _moved_by = field_validator("moved_by", mode="before")(lambda v: _strings(v))
    _next_step = field_validator("next_step", mode="before")(lambda v: _NEXT_STEPS.get(_key(v), "ask"))
    _question = field_validator("question", mode="before")(lambda v: _text(v))


class ProposedTest(_Output):
    name: str = Field(min_length=1, description="The test, as a clinician would order it.")
    reason: str = Field(default="", description="Which leading diagnoses it separates.")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        return _renamed(data, {"name": ("test", "test_name"), "reason": ("rationale", "why")})

    _name = field_validator("name", "reason", mode="before")(lambda v: _text(v))


class TestChoice(_Output):
    """Up to three tests that best separate the leading diagnoses, plus a record question or image request."""

    __test__ = False  # not a pytest test class, whatever its name suggests

    tests: list[ProposedTest] = Field(default_factory=list, max_length=MAX_TESTS, description="Best first.")
    record_question: str = Field(default="", description="A question for the health record, or empty.")
    image_request: str = Field(default="", description="What to look for in an available image, or empty.")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return _renamed(data, {"tests": ("test", "recommended_tests", "tests_to_order", "orders"),
                               "record_question": ("record", "record_lookup"),
                               "image_request": ("image", "image_question")})

    @field_validator("tests", mode="before")
    @classmethod
    def _tests(cls, value: Any) -> list[ProposedTest]:
        tests: list[ProposedTest] = []
        for item in _items(value):
            try:
                tests.append(ProposedTest.model_validate(item))
            except ValueError:  # an unnamed test is dropped, the others kept
                continue
        return tests[:MAX_TESTS]

    _texts = field_validator("record_question", "image_request", mode="before")(lambda v: _text(v))


class Challenge(_Output):
    """The devil's advocate: anchoring or contradicting evidence, an alternative, and the test that could falsify."""

    concern: str = Field(default="", description="Anchoring or evidence that contradicts the leading diagnosis.")
    alternative: str = Field(default="", description="The diagnosis most at risk of being missed.")
    falsifying_test: str = Field(default="", description="The one test that could prove the leader wrong.")
    leader_holds: bool = Field(default=True, description="false when the leading diagnosis should not be accepted.")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return _renamed(data, {"concern": ("critique", "anchoring", "contradicting_evidence", "objection"),
                               "alternative": ("alternative_diagnosis", "missed_diagnosis"),
                               "falsifying_test": ("test", "falsify_test", "discriminating_test"),
                               "leader_holds": ("holds", "agree", "leading_diagnosis_holds")})

    _texts = field_validator("concern", "alternative", "falsifying_test", mode="before")(lambda v: _text(v))

    @field_validator("leader_holds", mode="before")
    @classmethod
    def _holds(cls, value: Any) -> Any:
        if isinstance(value, str):  # "no", "False", "does not hold"
            return not re.search(r"\b(no|false|not)\b", value, re.IGNORECASE)
        return value


class Substitution(_Output):
    instead_of: str = Field(min_length=1, description="The expensive test.")
    use: str = Field(min_length=1, description="The cheaper equivalent.")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return _renamed(data, {"instead_of": ("replace", "original", "test"), "use": ("with", "substitute", "cheaper")})

    _texts = field_validator("instead_of", "use", mode="before")(lambda v: _text(v))


class StewardshipView(_Output):
    """Tests not worth their price (vetoes) and cheaper equivalents (substitutions), by test name."""

    vetoes: list[str] = Field(default_factory=list, description="Tests that should not be ordered now.")
    substitutions: list[Substitution] = Field(default_factory=list, description="Cheaper equivalents.")
    note: str = Field(default="", description="One short sentence.")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return _renamed(data, {"vetoes": ("veto", "vetoed", "avoid"), "substitutions": ("substitution", "substitutes"),
                               "note": ("rationale", "comment")})

    _vetoes = field_validator("vetoes", mode="before")(lambda v: _strings(v))
    _note = field_validator("note", mode="before")(lambda v: _text(v))

    @field_validator("substitutions", mode="before")
    @classmethod
    def _substitutions(cls, value: Any) -> list[Substitution]:
        if isinstance(value, Mapping) and not {"instead_of", "use"} & {_key(k) for k in value}:
            value = [{"instead_of": k, "use": v} for k, v in value.items()]  # {"CT chest": "Chest X-ray"}
        out: list[Substitution] = []
        for item in _items(value):
            try:
                out.append(Substitution.model_validate(item))
            except ValueError:
                continue
        return out


class ChecklistView(_Output):
    """Quality control: problems found (invalid test names, inconsistency) and whether a diagnosis is justified."""

    problems: list[str] = Field(default_factory=list, description="Each problem in one short sentence.")
    ready_to_diagnose: bool = Field(default=False, description="true when the evidence justifies a diagnosis now.")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return _renamed(data, {"problems": ("issues", "errors", "concerns"),
                               "ready_to_diagnose": ("ready", "can_diagnose", "diagnosis_ready")})

    _problems = field_validator("problems", mode="before")(lambda v: _strings(v))

    @field_validator("ready_to_diagnose", mode="before")
    @classmethod
    def _ready(cls, value: Any) -> Any:
        if isinstance(value, str):
            return bool(re.match(r"\s*(yes|true|ready)\b", value, re.IGNORECASE))
        return value


ROLE_OUTPUTS: dict[RoleName, type[BaseModel]] = {
    "hypothesis": HypothesisView,
    "test_chooser": TestChoice,
    "challenger": Challenge,
    "stewardship": StewardshipView,
    "checklist": ChecklistView,
}


@functools.cache
def _role_json_schema(role: RoleName) -> dict[str, Any]:
    return strict_json_schema(ROLE_OUTPUTS[role])


def role_json_schema(role: RoleName) -> dict[str, Any]:
    """The JSON Schema of ``role``'s output: self-contained (no ``$ref``), every key required, no others (a fresh
    copy: callers may edit it)."""
    return copy.deepcopy(_role_json_schema(role))
