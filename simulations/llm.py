"""One model call with its cost, read defensively from whatever the chat model returns.

The real backends put token counts in ``usage_metadata`` and the model spec and wall time in
``response_metadata``; fakes and third-party models may set none of them, so each is optional and the wall time
falls back to our own clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

T = TypeVar("T")


@dataclass(frozen=True)
class Usage:
    """What one or more model calls cost. ``calls`` is 0 when an answer came from deterministic code."""

    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            model=self.model or other.model,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            seconds=self.seconds + other.seconds,
            calls=self.calls + other.calls,
        )


async def generate(model: BaseChatModel, messages: Sequence[BaseMessage], *, max_new_tokens: int) -> tuple[str, Usage]:
    """Call ``model`` once; return its answer text and what the call cost. Model errors propagate unchanged."""
    start = time.perf_counter()
    message = await model.ainvoke(list(messages), max_new_tokens=max_new_tokens)
    elapsed = time.perf_counter() - start
    usage = getattr(message, "usage_metadata", None) or {}
    meta = getattr(message, "response_metadata", None) or {}
    wall = meta.get("wall_seconds")
    return content_text(message.content), Usage(
        model=meta.get("model") or meta.get("model_name") or None,
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        seconds=float(wall) if isinstance(wall, int | float) and not isinstance(wall, bool) else elapsed,
        calls=1,
    )


def content_text(content: Any) -> str:
    """Message content as plain text: a string, or the text parts of a list of content blocks."""
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        parts = [b if isinstance(b, str) else b.get("text", "") for b in content if isinstance(b, str | dict)]
        return "".join(p for p in parts if isinstance(p, str)).strip()
    return ""


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


@dataclass
class Parsed(Generic[T]):
    """What ``ask_until_parsed`` got: the parsed value (None if no answer parsed), the label of the prompt that
    produced it, every raw answer in order, and what the calls cost."""

    value: T | None
    label: str | None
    answers: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    @property
    def raw(self) -> str:
        return "\n---\n".join(self.answers)


async def ask_until_parsed(
    model: BaseChatModel,
    system: str,
    prompts: Sequence[tuple[str, str]],
    parse: Callable[[str], T | None],
    *,
    max_new_tokens: int,
) -> Parsed[T]:
    """Ask each (label, prompt) in turn, each in a fresh context, until ``parse`` reads an answer (the judges ask
    once, then once more strictly); model errors propagate."""
    result: Parsed[T] = Parsed(None, None)
    for label, prompt in prompts:
        raw, cost = await generate(model, [SystemMessage(system), HumanMessage(prompt)], max_new_tokens=max_new_tokens)
        result.answers.append(raw)
        result.usage += cost
        value = parse(raw)
        if value is not None:
            result.value, result.label = value, label
            return result
    return result
