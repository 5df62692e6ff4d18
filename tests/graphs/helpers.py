"""Test doubles for the graph tests: scripted doctor replies and an environment that answers from a table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from graphs.environment import Observation
from graphs.state import DialogueEntry


def decision(action: str, text: str, dx: str = "acute myocardial infarction", p: float = 0.6) -> str:
    return "Here is my decision:\n" + json.dumps(
        {"action": action, "text": text, "differential": [{"diagnosis": dx, "probability": p}], "rationale": "r"}
    )


def doctor_model(*replies: str) -> FakeListChatModel:
    """A fake chat model that gives the replies in order, then repeats the last one forever."""
    return FakeListChatModel(responses=list(replies))


class TableEnvironment:
    """Answers questions with a fixed sentence and tests from a dict; counts what it was asked."""

    mode = "test/table"

    def __init__(self, results: dict[str, str] | None = None) -> None:
        self.results = results or {}
        self.calls: list[tuple[str, str]] = []

    def opening(self) -> str:
        return "Evaluate the patient with chest pain."

    async def respond(
        self, action: Literal["ask", "test"], text: str, dialogue: Sequence[DialogueEntry]
    ) -> Observation:
        self.calls.append((action, text))
        if action == "ask":
            return Observation(text="It started an hour ago.", speaker="patient", source="patient")
        result = self.results.get(text)
        if result is None:
            return Observation(text=f"RESULTS: {text}: not available", speaker="measurement",
                               source=f"test:{text}", available=False)
        return Observation(text=f"RESULTS: {result}", speaker="measurement", source=f"test:{text}")
