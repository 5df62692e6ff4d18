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
from agents.doctor.prompts import SAFE_QUESTION, SAFE_QUESTIONS

NO_DIAGNOSIS = "No diagnosis reached"
# Marks a synthesised decision in the dialogue, so later turns can see how often the model has failed.
FALLBACK_RATIONALE = "Fallback: the model's reply could not be used."

PriorDifferential = Sequence[DifferentialEntry | Mapping[str, Any]]

# Openers of a question ("Do you...", "Tell me...") or of narration ("The patient has...", "She reports..."): a
# text that starts like this is not a disease name.
_NOT_A_DIAGNOSIS_START = re.compile(
    r"^(do|does|did|are|is|was|were|have|has|had|can|could|would|will|when|what|where|which|who|how|why|any|tell|"
    r"please|describe|the|she|he|they|his|her|their|patient|this|it|i|my|we|there|you|your)\b",
    re.IGNORECASE,
)


def safe_question(
    prior_differential: PriorDifferential | None = None, earlier_replies: Sequence[str] = ()
) -> DoctorDecision:
    """The question asked when the model's reply is unusable: open, harmless, and useful on any case.

    A model that keeps failing would otherwise ask the same question every turn; the first one of
    ``SAFE_QUESTIONS`` not found in ``earlier_replies`` is asked instead (a standard history-taking order).
    """
    text = next((q for q in SAFE_QUESTIONS if not any(q in reply for reply in earlier_replies)), SAFE_QUESTION)
    return DoctorDecision(
        action="ask",
        text=text,
        differential=normalise_differential(prior_differential),
        rationale=FALLBACK_RATIONALE,
    )


def count_fallbacks(replies: Sequence[str]) -> int:
    """How many of the dialogue's doctor replies were synthesised by ``safe_question`` (exact JSON match)."""
    count = 0
    for reply in replies:
        try:
            decision = DoctorDecision.model_validate_json(reply)
        except ValueError:  # pydantic's ValidationError is a ValueError: a model-written reply
            continue
        count += decision.rationale == FALLBACK_RATIONALE
    return count


def looks_like_diagnosis(text: str) -> bool:
    """A short name rather than a question, a narration of the case or a sentence of prose."""
    text = text.strip()
    return (
        bool(text)
        and not text.endswith("?")
        and not _NOT_A_DIAGNOSIS_START.match(text)
        and len(text.split()) <= 12
        and degenerate_reason(text) is None
    )


def forced_diagnosis(
    decision: DoctorDecision | None, prior_differential: PriorDifferential | None = None
) -> DoctorDecision:
    """Turn whatever the last turn produced into a diagnosis.

    Preference: the decision's own top differential item (the model's current belief), the last known differential,
    the decision's text when it reads like a diagnosis (not for a test order), else ``NO_DIAGNOSIS``.
    """
    prior = normalise_differential(prior_differential)
    differential = decision.differential if decision is not None and decision.differential else prior
    if decision is not None and decision.differential:
        text = decision.differential[0].diagnosis
    elif prior:
        text = prior[0].diagnosis
    elif decision is not None and decision.action not in ("test", "image") and looks_like_diagnosis(decision.text):
        # A test order's text names a test and an image request's what to look for ("Pleural effusion"), never the
        # doctor's conclusion; an "ask" whose text is a bare name often is one.
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
