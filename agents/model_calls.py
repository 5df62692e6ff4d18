"""One model call as the roles make it, and the reply read back.

Every role (the doctor, the record navigator, the image reader) passes generation limits per call (``max_new_tokens``,
``json_schema``) that our backends understand. A foreign langchain-core chat model may refuse unknown keyword
arguments with a ``TypeError``; ``GenerationCall`` then calls it plainly from then on rather than failing every
turn. ``read_reply`` turns an answer into text, thinking and usage, tolerating fakes that carry no metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agents.backends import split_thinking

__all__ = ["GenerationCall", "ModelReply", "read_reply", "rejects_generation_kwargs"]

logger = logging.getLogger(__name__)

ThinkingSplit = Callable[[str], tuple[str, str | None]]


@dataclass(frozen=True)
class ModelReply:
    """A model's answer: its text (thinking removed), the thinking, tokens and the model that answered."""

    text: str
    thinking: str | None
    input_tokens: int
    output_tokens: int
    model: str | None


def read_reply(message: Any, *, split: ThinkingSplit = split_thinking) -> ModelReply:
    """Text and metadata of a model answer; fakes and foreign models lack the metadata, so missing means 0/None.

    Backends strip MedGemma's thinking already (and 4B 1.5 thinks unprompted); ``split`` strips it again in case
    this model did not."""
    if isinstance(message, BaseMessage):
        content = str(message.text)
        metadata = message.response_metadata or {}
        usage = getattr(message, "usage_metadata", None) or {}
    else:
        content, metadata, usage = str(message), {}, {}
    text, leftover = split(content)
    thoughts = [t for t in (metadata.get("thinking"), leftover) if isinstance(t, str) and t.strip()]
    model = metadata.get("model") or metadata.get("model_name")
    return ModelReply(
        text=text,
        thinking="\n\n".join(thoughts) or None,
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        model=str(model) if model else None,
    )


def rejects_generation_kwargs(exc: TypeError) -> bool:
    """Whether a ``TypeError`` is a model refusing our per-call generation arguments (not a bug elsewhere)."""
    message = str(exc)
    return "unexpected keyword argument" in message and ("max_new_tokens" in message or "json_schema" in message)


class GenerationCall:
    """Calls ``model`` with per-call generation arguments, and plainly once it has refused them."""

    def __init__(self, model: BaseChatModel) -> None:
        self.model = model
        self.plain = False  # set once the model refused our generation keyword arguments

    async def ainvoke(self, messages: list[BaseMessage], **kwargs: Any) -> Any:
        """The model's raw answer to ``messages``; ``kwargs`` are dropped for a model that cannot take them."""
        if self.plain or not kwargs:
            return await self.model.ainvoke(messages)
        try:
            return await self.model.ainvoke(messages, **kwargs)
        except TypeError as exc:
            if not rejects_generation_kwargs(exc):
                raise
            logger.info("model %s rejects max_new_tokens/json_schema; calling without them", type(self.model))
            self.plain = True
            return await self.model.ainvoke(messages)
