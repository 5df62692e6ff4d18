"""Turning a decision (the single doctor's or the panel's consensus) into the graph's next step.

Both deciders end the same way: a diagnosis becomes the final one, or waits for a clinician when the approval policy
says so; any other action becomes the pending action, with the reasons it needs approval when it does (a test
priced at or over the threshold, an invasive one). Orders the safety gate would refuse need no approval: they will
not be carried out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from graphs.approvals import DEFAULT_EXPENSIVE_OVER, approval_reasons
from graphs.orders import facts_from, review_order
from graphs.state import ConsultationState

Next = Literal["environment", "record", "image", "approval", "finalize"]


def approval_policy(state: Mapping[str, Any]) -> str:
    return str(state.get("approve") or "none")


def ended_by_for(state: Mapping[str, Any], forced: bool) -> str:
    """Why the consultation ended: the doctor chose to, the turn budget forced it, or the money ran out."""
    if state.get("budget_exhausted"):
        return "budget"  # the last turn came early because the money ran out, whatever the doctor chose on it
    return "turn_budget" if forced else "doctor"


def commit_decision(state: Mapping[str, Any], action: str, text: str, *, forced: bool = False) -> dict[str, Any]:
    """The state update for a decision: ``final_diagnosis`` or ``pending``, with approval reasons when needed."""
    policy = approval_policy(state)
    if action == "diagnose":
        reasons = approval_reasons(policy, "diagnose")
        if reasons:
            return {"pending": {"action": "diagnose", "text": text, "approval": reasons, "forced": forced},
                    "final_diagnosis": None}
        return {"pending": None, "final_diagnosis": text, "ended_by": ended_by_for(state, forced)}
    pending: dict[str, Any] = {"action": action, "text": text}
    if action == "test" and policy != "none":
        review = review_order(text, facts=facts_from(state.get("patient_facts")), costs=state.get("costs"),
                              budget=state.get("budget"))
        if review.allowed:
            reasons = approval_reasons(policy, "test", price=review.price, invasive=review.invasive(),
                                       expensive_over=float(state.get("expensive_over") or DEFAULT_EXPENSIVE_OVER))
            if reasons:
                pending["approval"] = reasons
    return {"pending": pending}


def route_after_decision(state: ConsultationState) -> Next:
    """Where a decision goes next; a state with neither a diagnosis nor an action is a bug."""
    if state.get("final_diagnosis") is not None or state.get("ended_by") == "clinician":
        return "finalize"
    pending = state.get("pending")
    if pending is None:
        raise RuntimeError(f"the decision left no action and no diagnosis at turn {state.get('turn')}")
    if pending.get("approval") and not pending.get("approved"):
        return "approval"
    action = pending["action"]
    if action in ("ask", "test"):
        return "environment"
    if action in ("record", "image"):
        return action  # type: ignore[return-value]
    raise RuntimeError(f"a {action!r} decision cannot be carried out at turn {state.get('turn')}")
