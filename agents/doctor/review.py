"""Checks a parsed decision against the dialogue before it is used: a well-formed reply can still be useless.

Small models copy: they repeat their previous reply verbatim, or echo the patient's last answer back as their
"question". Both parse fine and both stall a consultation until the turn budget forces a diagnosis, so they get the
same treatment as an unparseable reply (one repair call, then the safe fallback). On the final turn the only thing
that matters is that a diagnosis can be given. Pure functions of their arguments.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from agents.doctor.decision import DoctorDecision, is_placeholder
from agents.doctor.fallbacks import FALLBACK_RATIONALE, NO_DIAGNOSIS, PriorDifferential, forced_diagnosis
from agents.doctor.messages import Exchange
from agents.doctor.parsing import parse_decision

# Shorter texts ("No.", "Yes") legitimately recur inside answers; copying needs a sentence's worth of text.
_MIN_COPY_CHARS = 24
# An "ask" without a question mark that opens like a description ("The patient has...", "She reports...") is the
# model narrating the case ("You are a designer."), not asking; imperatives ("Please describe...") do not match.
_NARRATION = re.compile(r"^(?:the|she|he|they|his|her|their|patient|this|it|i|my|we|there|you|your)\b", re.IGNORECASE)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.casefold())).strip()


_FALLBACK_NOTE = _norm(FALLBACK_RATIONALE)


@functools.lru_cache(maxsize=4096)
def _action_of(reply: str) -> tuple[str, str] | None:
    # Every turn reviews against all earlier replies; remembering each reply's parse keeps a turn O(1) in them.
    decision = parse_decision(reply).decision
    return None if decision is None else (decision.action, _norm(decision.text))


def earlier_actions(exchanges: Sequence[Exchange]) -> list[tuple[str, str]]:
    """(action, normalised text) of each earlier reply that parses."""
    return [found for exchange in exchanges if (found := _action_of(exchange.reply)) is not None]


def review_problem(
    decision: DoctorDecision,
    objective: str,
    exchanges: Sequence[Exchange],
    *,
    final: bool,
    prior_differential: PriorDifferential | None = None,
    record_available: bool = False,
    image_offered: bool = False,
) -> str | None:
    """Why ``decision`` should not be used this turn (a short reason the repair prompt can quote), or None.

    ``image_offered``: the ``image`` action was offered this consultation (images to read, "on request").
    """
    if _norm(decision.text) == _FALLBACK_NOTE:
        # A degraded turn's JSON stays in the dialogue; small models copy its note back as their "answer".
        return "it copies the fallback note instead of writing its own answer"
    if final:
        if decision.action != "diagnose" and forced_diagnosis(decision, prior_differential).text == NO_DIAGNOSIS:
            return "it gave no diagnosis on the final turn"
        return None
    if is_placeholder(decision.text):
        return "it copies a placeholder from the example instead of writing its own"
    text = _norm(decision.text)
    if decision.action == "diagnose":
        # Every word already in the objective ("Gait and limb ataxia"): the presenting complaint, not a disease.
        # Only the objective is checked: test results may legitimately name the disease.
        words = text.split()
        if len(words) >= 2 and set(words) <= set(_norm(objective).split()):
            return "it names the presenting symptoms, not a disease"
        return None
    if decision.action == "record" and not record_available:
        return "there is no health record to look up; ask the patient or order a test"
    if decision.action == "image" and not image_offered:
        return "no image read can be requested; ask the patient or order a test"
    if (decision.action, text) in earlier_actions(exchanges):
        verb = {
            "ask": "asked that question",
            "test": "ordered that test",
            "record": "looked that up in the record",
            "image": "asked for that image read",
        }[decision.action]
        return f"you already {verb}; ask or order something new, or diagnose"
    sources = [objective, *(ex.answer for ex in exchanges)]
    if decision.action == "ask" and len(text) >= _MIN_COPY_CHARS and any(text in _norm(s) for s in sources):
        return "it repeats the patient's words instead of asking a question"
    if decision.action == "ask" and "?" not in decision.text and _NARRATION.match(decision.text.strip()):
        return "it describes the patient instead of asking a question"
    return None
