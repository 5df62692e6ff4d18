"""Test doubles at the model seam: langchain-core fake chat models that also record what they were sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field


class RecordingFakeModel(GenericFakeChatModel):
    """Answers from a script (strings, AIMessages, or exceptions to raise) and records each call's messages/kwargs."""

    calls: list[tuple[list[BaseMessage], dict[str, Any]]] = Field(default_factory=list)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.calls.append((list(messages), dict(kwargs)))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


class _Script:
    """An iterator over replies that raises the exceptions it holds; unlike a generator it survives raising."""

    def __init__(self, replies: tuple[str | AIMessage | BaseException, ...]) -> None:
        self._replies = list(replies)

    def __iter__(self) -> Iterator[str | AIMessage]:
        return self

    def __next__(self) -> str | AIMessage:
        if not self._replies:
            raise AssertionError("the fake model was called more often than its script allows")
        reply = self._replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply


def scripted(*replies: str | AIMessage | BaseException) -> RecordingFakeModel:
    """A fake model answering ``replies`` in order; an exception in the script is raised by that call."""
    return RecordingFakeModel(messages=_Script(replies))


def decision_json(
    action: str, text: str, differential: list[tuple[str, float]] | None = None, rationale: str = ""
) -> str:
    return json.dumps(
        {
            "action": action,
            "text": text,
            "differential": [{"diagnosis": d, "probability": p} for d, p in (differential or [])],
            "rationale": rationale,
        }
    )


def message_with_metadata(
    content: str, *, input_tokens: int, output_tokens: int, thinking: str | None = None
) -> AIMessage:
    """An answer shaped like the backends' contract (usage and response metadata filled)."""
    return AIMessage(
        content,
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
        response_metadata={
            "model": "fake:medgemma",
            "wall_seconds": 0.01,
            "thinking": thinking,
            "finish_reason": "stop",
        },
    )
