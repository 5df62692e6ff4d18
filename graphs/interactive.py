"""The interactive environment: a person at the terminal plays the patient and the laboratory.

Each doctor action pauses the graph with LangGraph's ``interrupt()``; the caller shows the request, collects the
answer and resumes with ``Command(resume=answer)``. The pause is checkpointed, so the person may stop and continue
later (``clinicflow consult --resume THREAD``), even from another process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypedDict

from langgraph.types import interrupt

from graphs.environment import Observation
from graphs.state import DialogueEntry


class InteractiveRequest(TypedDict):
    """What an interrupt carries to the person answering (``kind`` tells it from a clinician's approval request)."""

    kind: Literal["answer"]
    action: Literal["ask", "test"]
    text: str
    prompt: str


class InteractiveEnvironment:
    """Answers come from a person through ``interrupt()``; no model is involved."""

    mode = "interactive"

    def __init__(self, objective: str) -> None:
        self._objective = objective

    def opening(self) -> str:
        return self._objective

    async def respond(
        self,
        action: Literal["ask", "test"],
        text: str,
        dialogue: Sequence[DialogueEntry],
    ) -> Observation:
        prompt = "Patient's answer" if action == "ask" else f"Result of {text}"
        answer = interrupt(InteractiveRequest(kind="answer", action=action, text=text, prompt=prompt))
        answer_text = str(answer).strip() or "(no answer)"
        if action == "ask":
            return Observation(text=answer_text, speaker="patient", source="interactive:patient")
        available = answer_text.lower() not in {"not available", "n/a", "unavailable"}
        return Observation(
            text=answer_text, speaker="measurement", source=f"interactive:test:{text}", available=available
        )
