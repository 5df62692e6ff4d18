"""The model-free decisions: the safe question and the diagnosis forced by the turn budget."""

from __future__ import annotations

import pytest

from agents.doctor import DifferentialEntry, DoctorDecision
from agents.doctor.fallbacks import NO_DIAGNOSIS, forced_diagnosis, looks_like_diagnosis, safe_question
from agents.doctor.prompts import SAFE_QUESTION

PRIOR = [DifferentialEntry(diagnosis="Sarcoidosis", probability=0.3)]


def test_safe_question_carries_the_prior_differential() -> None:
    decision = safe_question(PRIOR)
    assert (decision.action, decision.text, decision.differential) == ("ask", SAFE_QUESTION, PRIOR)


@pytest.mark.parametrize(
    ("decision", "prior", "expected"),
    [
        (
            DoctorDecision(action="ask", text="Any cough?", differential=[{"diagnosis": "Asthma", "probability": 0.5}]),
            PRIOR,
            "Asthma",
        ),
        (DoctorDecision(action="ask", text="Any cough?"), PRIOR, "Sarcoidosis"),
        (DoctorDecision(action="test", text="Serum ACE level"), None, NO_DIAGNOSIS),
        (DoctorDecision(action="ask", text="Pulmonary embolism"), None, "Pulmonary embolism"),
        (DoctorDecision(action="ask", text="Do you smoke?"), None, NO_DIAGNOSIS),
        (None, PRIOR, "Sarcoidosis"),
        (None, None, NO_DIAGNOSIS),
    ],
)
def test_forced_diagnosis_preference_order(
    decision: DoctorDecision | None, prior: list[DifferentialEntry] | None, expected: str
) -> None:
    forced = forced_diagnosis(decision, prior)
    assert (forced.action, forced.text) == ("diagnose", expected)
    assert "forced" in forced.rationale


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Myasthenia gravis", True),
        ("Acute MI.", True),
        ("What brings you in?", False),
        ("Tell me about it", False),
        ("Do you smoke", False),
        ("", False),
        ("a " * 20, False),
        ("The patient has no symptoms.", False),
    ],
)
def test_looks_like_diagnosis(text: str, expected: bool) -> None:
    assert looks_like_diagnosis(text) is expected
