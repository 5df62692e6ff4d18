"""Clinician approval points: which decisions pause for a clinician, what the pause carries, and reading the verdict.

The approval node calls LangGraph's ``interrupt()`` with an ``ApprovalRequest``; the caller (the terminal, or any
UI) shows it and resumes with ``Command(resume=verdict)``. The pause is checkpointed, so the clinician may answer
later, from another process (``clinicflow consult --resume THREAD``).

Policies: ``none`` (never pause; benchmark runs), ``invasive`` (tests the fee table marks invasive), ``expensive``
(a test order priced at ``expensive_over`` or more), ``diagnosis`` (before the final diagnosis), ``all`` (every test
order and the final diagnosis). Questions to the patient and record or image lookups never pause: they cost
nothing the patient would need to consent to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

ApprovalPolicy = Literal["none", "invasive", "expensive", "diagnosis", "all"]
APPROVAL_POLICIES: tuple[str, ...] = ("none", "invasive", "expensive", "diagnosis", "all")
DEFAULT_EXPENSIVE_OVER = 500.0

Verdict = Literal["approve", "edit", "reject"]
_VERDICT_WORDS: dict[str, Verdict] = {
    "a": "approve", "approve": "approve", "approved": "approve", "y": "approve", "yes": "approve", "ok": "approve",
    "e": "edit", "edit": "edit",
    "r": "reject", "reject": "reject", "rejected": "reject", "n": "reject", "no": "reject",
}


class ApprovalRequest(TypedDict):
    """What an approval interrupt carries to the clinician."""

    kind: Literal["approval"]
    action: str  # "test" or "diagnose"
    text: str
    reasons: list[str]
    price: float | None  # the order's price (tests), None for a diagnosis
    prompt: str
    differential: list[list[Any]]  # [[diagnosis, probability], ...], most likely first


@dataclass(frozen=True)
class ApprovalVerdict:
    """The clinician's answer: approve as is, edit the text (then it goes ahead as edited), or reject."""

    decision: Verdict
    text: str | None = None
    note: str | None = None


def check_policy(policy: str) -> ApprovalPolicy:
    """The policy, or a ValueError naming the choices."""
    if policy not in APPROVAL_POLICIES:
        raise ValueError(f"unknown approval policy {policy!r}; choose one of: {', '.join(APPROVAL_POLICIES)}")
    return policy  # type: ignore[return-value]


def approval_reasons(
    policy: str,
    action: str,
    *,
    price: float = 0.0,
    invasive: Sequence[str] = (),
    expensive_over: float = DEFAULT_EXPENSIVE_OVER,
) -> list[str]:
    """Why ``action`` must wait for a clinician under ``policy`` (empty: it need not). ``invasive`` names the
    invasive tests in the order; ``price`` is the order's total."""
    policy = check_policy(policy)
    if policy == "none":
        return []
    if action == "diagnose":
        return ["final diagnosis"] if policy in ("diagnosis", "all") else []
    if action != "test":
        return []
    reasons: list[str] = []
    if invasive and policy in ("invasive", "all"):
        reasons.append("invasive: " + ", ".join(invasive))
    if price >= expensive_over and policy in ("expensive", "all"):
        reasons.append(f"expensive: ${price:,.0f} (approval from ${expensive_over:,.0f})")
    if policy == "all" and not reasons:
        reasons.append("every test order needs approval")
    return reasons


def approval_request(
    action: str,
    text: str,
    reasons: Sequence[str],
    *,
    price: float | None = None,
    differential: Sequence[tuple[str, float]] = (),
) -> ApprovalRequest:
    what = f"Order {text}" if action == "test" else f"Final diagnosis: {text}"
    return ApprovalRequest(
        kind="approval",
        action=action,
        text=text,
        reasons=list(reasons),
        price=price,
        prompt=f"{what} ({'; '.join(reasons)}). Approve, edit or reject?",
        differential=[[name, probability] for name, probability in differential],
    )


def read_verdict(value: Any) -> ApprovalVerdict:
    """The clinician's resume value as a verdict: ``{"decision": ..., "text": ..., "note": ...}``, or a bare word
    (``approve``, ``reject``, ``edit:<new text>``, their first letters). Anything else is a ValueError that says what
    is accepted; an edit without new text is one too."""
    if isinstance(value, ApprovalVerdict):
        return value
    if isinstance(value, str):
        word, _, rest = value.strip().partition(":")
        value = {"decision": word.strip(), "text": rest.strip() or None}
    if not isinstance(value, Mapping):
        raise TypeError(f"an approval answer must be a mapping or a word, not {type(value).__name__}")
    decision = _VERDICT_WORDS.get(str(value.get("decision", "")).strip().lower())
    if decision is None:
        raise ValueError(f"unknown approval decision {value.get('decision')!r}: answer approve, edit or reject")
    text = value.get("text")
    text = text.strip() if isinstance(text, str) and text.strip() else None
    note = value.get("note")
    note = note.strip() if isinstance(note, str) and note.strip() else None
    if decision == "edit" and text is None:
        raise ValueError("an edit needs the new text (e.g. 'edit:CT head without contrast')")
    return ApprovalVerdict(decision=decision, text=text if decision == "edit" else None, note=note)
