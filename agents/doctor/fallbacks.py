"""Decisions the doctor makes without the model: the safe question and the diagnosis forced by the turn budget.

A consultation must never crash on a bad reply and must always end with a diagnosis on its last turn (AgentClinic
counts no diagnosis as wrong). These functions are pure so the policy is tested on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agents.doctor.decision import DifferentialEntry, DoctorDecision, normalise_differential
from agents.doctor.parsing import degenerate_reason
from agents.doctor.prompts import SAFE_QUESTION

NO_DIAGNOSIS = "No diagnosis reached"

PriorDifferential = Sequence[DifferentialEntry | Mapping[str, Any]]

# Question openers: a text that starts like this is a question to the patient, not a disease name.
_QUESTION_START = re.compile(
    r"^(do|does|did|are|is|was|were|have|has|had|can|could|would|will|when|what|where|which|who|how|why|any|tell|"
    r"please|describe)\b",
    re.I,
)


def safe_question(prior_differential: PriorDifferential | None = None) -> DoctorDecision:
    """The question asked when the model's reply is unusable: open, harmless, and useful on any case."""
    return DoctorDecision(
        action="ask",
        text=SAFE_QUESTION,
        differential=normalise_differential(prior_differential),
        rationale="Fallback: the model's reply could not be used.",
    )


def looks_like_diagnosis(text: str) -> bool:
    """A short statement rather than a question, a test order or a sentence of prose."""
    text = text.strip()
    return (
        bool(text)
        and not text.endswith("?")
        and not _QUESTION_START.match(text)
        and len(text.split()) <= 12
        and degenerate_reason(text) is None
    )


def forced_diagnosis(
    decision: DoctorDecision | None, prior_differential: PriorDifferential | None = None
) -> DoctorDecision:
    """Turn whatever the last turn produced into a diagnosis.

    Preference: the decision's own top differential item (the model's current belief), the last known differential,
    the decision's text when it reads like a diagnosis, else ``NO_DIAGNOSIS``.
    """
    prior = normalise_differential(prior_differential)
    differential = decision.differential if decision is not None and decision.differential else prior
    if decision is not None and decision.differential:
        text = decision.differential[0].diagnosis
    elif prior:
        text = prior[0].diagnosis
    elif decision is not None and looks_like_diagnosis(decision.text):
        text = decision.text
    else:
        text = NO_DIAGNOSIS
    rationale = decision.rationale if decision is not None and decision.rationale else ""
    note = "Final turn: diagnosis forced by the turn budget."
    return DoctorDecision(
        action="diagnose",
        text=text,
        differential=differential,
        rationale=f"{note} {rationale}".strip(),
    )
