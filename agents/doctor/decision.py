"""The doctor's structured decision for one turn, and its JSON Schema for constrained decoding.

Normalisation lives in the validators rather than in the parser so that every way a decision is built (parsed from a
reply, synthesised as a fallback, rebuilt from graph state) ends up with the same shape: probabilities in [0, 1],
the differential sorted most likely first, empty entries dropped, at most ``MAX_DIFFERENTIAL`` items.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.json_schemas import strict_json_schema

Action = Literal["ask", "test", "record", "image", "diagnose"]

# Five is what a clinician would write down; longer lists from small models are mostly noise and cost tokens.
MAX_DIFFERENTIAL = 5

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def normalise_probability(value: Any) -> float:
    """Read 0.7, 70, "70%", "0.7" or "70 %" as a probability in [0, 1]; anything unreadable is 0.0.

    Models mix fractions and percentages; a value above 1 can only sensibly be a percentage.
    """
    if isinstance(value, bool):  # bool is an int subclass; True is not "100%"
        return 0.0
    percent = False
    if isinstance(value, str):
        percent = "%" in value
        match = _NUMBER.search(value)
        if match is None:
            return 0.0
        value = float(match.group())
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0.0
    number = float(value)
    if percent or number > 1.0:
        number /= 100.0
    return min(max(number, 0.0), 1.0)


class DifferentialEntry(BaseModel):
    """One candidate diagnosis with the doctor's probability for it."""

    model_config = ConfigDict(frozen=True)

    diagnosis: str = Field(min_length=1, description="A candidate diagnosis, as a specific disease name.")
    probability: float = Field(
        ge=0.0, le=1.0, description="How likely this diagnosis is, between 0 and 1 (0.7 means 70%)."
    )

    @field_validator("diagnosis", mode="before")
    @classmethod
    def _strip_diagnosis(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("probability", mode="before")
    @classmethod
    def _normalise_probability(cls, value: Any) -> float:
        return normalise_probability(value)


def is_placeholder(text: str) -> bool:
    """``<most likely disease>``: the prompt's example slot copied verbatim, not an answer."""
    stripped = text.strip()
    return stripped.startswith("<") and stripped.endswith(">")


def _coerce_entry(item: Any) -> DifferentialEntry | None:
    """One differential item in any shape a model writes, or None when it names no diagnosis."""
    if isinstance(item, DifferentialEntry):
        return item
    if isinstance(item, str):
        # A bare name carries no probability; 0.0 keeps it listed without inventing confidence.
        item = {"diagnosis": item, "probability": 0.0}
    if not isinstance(item, Mapping):
        return None
    diagnosis = item.get("diagnosis")
    if not isinstance(diagnosis, str) or not diagnosis.strip() or is_placeholder(diagnosis):
        return None
    return DifferentialEntry(diagnosis=diagnosis, probability=item.get("probability", 0.0))


def normalise_differential(value: Any) -> list[DifferentialEntry]:
    """Coerce, drop empties and duplicates, sort most likely first (stable), cap at ``MAX_DIFFERENTIAL``."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        # {"Pneumonia": 0.6, "Bronchitis": "30%"}: a mapping from diagnosis to probability.
        value = [{"diagnosis": k, "probability": v} for k, v in value.items()]
    elif isinstance(value, (str, DifferentialEntry)):
        value = [value]
    entries: list[DifferentialEntry] = []
    seen: set[str] = set()
    for item in value:
        entry = _coerce_entry(item)
        if entry is None or entry.diagnosis.casefold() in seen:
            continue
        seen.add(entry.diagnosis.casefold())
        entries.append(entry)
    entries.sort(key=lambda e: e.probability, reverse=True)
    return entries[:MAX_DIFFERENTIAL]


class DoctorDecision(BaseModel):
    """What the doctor does this turn: ask the patient, order a test, look up the record, have an image read, or
    commit to a diagnosis."""

    model_config = ConfigDict(frozen=True)

    action: Action = Field(
        description='"ask" to question the patient, "test" to order one test or examination, "record" to look '
        'something up in the patient\'s health record (only when one is available), "image" to have one of the '
        'patient\'s images read (only when offered), "diagnose" to commit to the final diagnosis.'
    )
    text: str = Field(
        min_length=1,
        description="The question to the patient, the test to order, the question for the health record, what to "
        "look for in the image, or the diagnosis (a specific disease name).",
    )
    differential: list[DifferentialEntry] = Field(
        default_factory=list,
        max_length=MAX_DIFFERENTIAL,
        description="The current differential diagnosis, most likely first, at most five items.",
    )
    rationale: str = Field(default="", description="One short sentence explaining the choice.")

    @field_validator("text", "rationale", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("differential", mode="before")
    @classmethod
    def _normalise_differential(cls, value: Any) -> list[DifferentialEntry]:
        return normalise_differential(value)


def decision_json_schema(*, with_record: bool = False, with_image: bool = False) -> dict[str, Any]:
    """The JSON Schema of a ``DoctorDecision`` (a fresh copy: callers may edit it).

    ``record`` is in the action enum only ``with_record`` and ``image`` only ``with_image``: a constrained engine
    then cannot pick a lookup that has no record, or an image read that is not offered.
    """
    schema = copy.deepcopy(_decision_json_schema())
    dropped = {name for name, offered in (("record", with_record), ("image", with_image)) if not offered}
    action = schema["properties"]["action"]
    action["enum"] = [a for a in action["enum"] if a not in dropped]
    return schema


@functools.cache
def _decision_json_schema() -> dict[str, Any]:
    """The JSON Schema of a ``DoctorDecision`` for constrained decoding, self-contained and strict: the keys come in
    this order (action and text first, so a reply cut off by the token limit still carries the decision)."""
    return strict_json_schema(DoctorDecision)
