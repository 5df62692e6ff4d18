"""The environment interface: whatever answers the doctor's questions and test orders.

The consultation graph talks to an ``Environment`` and never knows which one: the simulated clinic (AgentClinic-style
actors over a case, in ``simulations``), a clinician at the terminal (``graphs.interactive``), or later a FHIR record.
``respond`` runs inside a graph node, so an implementation may call LangGraph's ``interrupt()``; it must then have no
side effects before that call, because the node is re-run from its start when the consultation resumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from graphs.state import DialogueEntry, Speaker


@dataclass(frozen=True)
class Observation:
    """An environment's answer to one doctor action."""

    text: str
    speaker: Speaker
    # Where the fact came from, recorded with the finding: "patient", "test:<name>", "clinician".
    source: str
    # False when a test was ordered that the environment could not provide (strict mode's "not available").
    available: bool = True
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0


@runtime_checkable
class Environment(Protocol):
    """Answers the doctor. ``mode`` names the environment in transcripts, e.g. ``simulated/strict``."""

    @property
    def mode(self) -> str: ...

    def opening(self) -> str:
        """What the doctor is told at intake: the objective and any presenting information."""
        ...

    async def respond(
        self,
        action: Literal["ask", "test"],
        text: str,
        dialogue: Sequence[DialogueEntry],
    ) -> Observation:
        """Answer a question (``ask``) or a test order (``test``) given the dialogue so far."""
        ...
