"""The clinician's approval point at the terminal: what the graph wants to do, and the clinician's verdict.

The graph pauses with an approval request (``graphs.approvals.ApprovalRequest``: action, text, price, reasons,
differential, prompt) before an invasive or expensive test or the final diagnosis, as the ``--approve`` policy says.
Formatting the request and turning the clinician's typed choice into the resume value are pure functions, so they are
tested without a terminal; ``ask_approval`` is the thin interactive loop that reads with the same prompt helper as
the interactive patient (rich's ``Prompt.ask``, off the event loop), so Ctrl-D or an empty stdin pauses the
consultation at this point and ``--resume`` asks again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from rich.markup import escape
from rich.prompt import Prompt

from clinicflow.terminal import console

Decision = Literal["approve", "edit", "reject"]
# What the clinician may type for each decision (case-insensitive); anything else is asked again.
CHOICES: dict[str, Decision] = {
    "a": "approve", "approve": "approve", "y": "approve", "yes": "approve", "ok": "approve",
    "e": "edit", "edit": "edit",
    "r": "reject", "reject": "reject", "n": "reject", "no": "reject",
}
# What each paused action is, in the clinician's words.
ACTION_WORDS = {
    "test": "order the test", "diagnose": "commit to the diagnosis", "image": "read the image",
    "record": "look up the record", "ask": "ask the patient",
}
# What "edit" replaces, per action (the question the edit prompt asks).
EDIT_WORDS = {"test": "Test to order instead", "diagnose": "Diagnosis to record instead"}
CHOICE_LINE = "[a]pprove / [e]dit / [r]eject"

Reader = Callable[[str], str]


def format_price(price: float | None) -> str:
    """``$1,250`` (cents only when there are any); ``-`` when the action has no price."""
    if price is None:
        return "-"
    return f"${price:,.0f}" if float(price).is_integer() else f"${price:,.2f}"


def format_differential(differential: Sequence[Sequence[Any]], limit: int = 5) -> str:
    """``Pneumonia 60%, Pulmonary embolism 30%``: the panel's current ranking, as the clinician reads it."""
    shown = []
    for item in list(differential)[:limit]:
        name, probability = item[0], item[1] if len(item) > 1 else None
        shown.append(f"{name} {float(probability):.0%}" if isinstance(probability, int | float) else str(name))
    return ", ".join(shown) or "none given"


def format_approval(request: Mapping[str, Any]) -> str:
    """The request as rich markup: what would happen, its price, why it needs approval, the differential."""
    action = str(request.get("action", ""))
    lines = [f"[bold yellow]Approval needed:[/] {escape(ACTION_WORDS.get(action, action or 'act'))}",
             f"  [bold]{escape(str(request.get('text', '')))}[/]"]
    if request.get("price") is not None:
        lines.append(f"  price: {format_price(request['price'])}")
    reasons = [str(r) for r in request.get("reasons") or []]
    if reasons:
        lines.append(f"  why approval: {escape('; '.join(reasons))}")
    if request.get("differential"):
        lines.append(f"  differential: {escape(format_differential(request['differential']))}")
    if request.get("prompt"):
        lines.append(f"  [dim]{escape(str(request['prompt']))}[/]")
    return "\n".join(lines)


def parse_decision(choice: str) -> Decision | None:
    """The decision a typed choice names (``a``, ``approve``, ``E``, ``r`` ...), or None when it names none."""
    return CHOICES.get(choice.strip().lower())


def approval_resume(decision: Decision, *, text: str | None = None, note: str | None = None) -> dict[str, Any]:
    """The resume value the graph reads (``graphs.approvals.read_verdict``): ``{"decision", "text", "note"}``.

    An edit must carry the replacement text; a note is kept for an edit or a rejection (empty means none); approving
    changes nothing, so it carries neither.
    """
    if decision not in ("approve", "edit", "reject"):
        raise ValueError(f"unknown decision {decision!r}; choose approve, edit or reject")
    cleaned = (text or "").strip() or None
    if decision == "edit" and cleaned is None:
        raise ValueError("an edit needs the new text")
    return {
        "decision": decision,
        "text": cleaned if decision == "edit" else None,
        "note": ((note or "").strip() or None) if decision != "approve" else None,
    }


def read_verdict_from(request: Mapping[str, Any], read: Reader) -> dict[str, Any]:
    """Ask through ``read`` (a prompt text in, the typed line out) until a decision is complete; EOFError from
    ``read`` propagates (the consultation then pauses at this approval)."""
    while (decision := parse_decision(read(CHOICE_LINE))) is None:
        console.print(f"[red]Type a, e or r:[/] {escape(CHOICE_LINE)}")
    if decision == "edit":
        label = EDIT_WORDS.get(str(request.get("action")), "New text")
        while not (text := read(label).strip()):
            console.print("[red]An edit needs the new text.[/]")
        return approval_resume("edit", text=text, note=None)
    if decision == "reject":
        return approval_resume("reject", note=read("Note for the record (Enter for none)"))
    return approval_resume("approve")


def _prompt(label: str) -> str:
    return Prompt.ask(f"[yellow]{escape(label)}[/]", console=console, default="", show_default=False)


async def ask_approval(request: Mapping[str, Any], read: Reader | None = None) -> dict[str, Any]:
    """Show the request and return the clinician's verdict as the resume value; reads run off the event loop. (The
    verdict is echoed from the graph's record of it, the ``approvals`` channel: see ``clinicflow.panel_view``.)"""
    console.print(format_approval(request))
    return await asyncio.to_thread(read_verdict_from, request, read or _prompt)
