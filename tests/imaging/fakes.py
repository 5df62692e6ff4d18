"""Test doubles at the image reader's model seam, and a few image bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.outputs import ChatResult
from pydantic import Field

from tests.doctor.fakes import message_with_metadata, scripted

__all__ = ["FakeClassifier", "HangingModel", "StrictModel", "message_with_metadata", "scripted"]

# Stand-ins for image bytes: the reader base64-encodes them and never decodes them, so any bytes do.
PNG_BYTES = b"\x89PNG\r\n\x1a\nnot really a png"


class HangingModel(GenericFakeChatModel):
    """Never answers: the call waits until the read is cancelled."""

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        await asyncio.sleep(60)
        raise AssertionError("unreachable: the test cancels the call first")


class StrictModel(FakeListChatModel):
    """Like a client that forwards unknown kwargs to an API that rejects them; records how often it was called."""

    attempts: list[dict[str, Any]] = Field(default_factory=list)

    def _call(self, *args: Any, **kwargs: Any) -> str:
        unknown = set(kwargs) - {"run_manager", "stop"}
        self.attempts.append(dict.fromkeys(unknown, True))
        if unknown:
            raise TypeError(f"create() got an unexpected keyword argument '{max(unknown)}'")
        return super()._call(*args, **kwargs)


class FakeClassifier:
    """A zero-shot classifier double: fixed scores per caption, or an exception; records what it was asked."""

    def __init__(self, scores: dict[str, float] | BaseException, *, spec: str | None = None) -> None:
        self.scores = scores
        self.calls: list[tuple[bytes, list[str]]] = []
        if spec is not None:
            self.spec = spec

    async def aclassify(self, image: bytes, labels: Sequence[str]) -> list[tuple[str, float]]:
        self.calls.append((image, list(labels)))
        if isinstance(self.scores, BaseException):
            raise self.scores
        # Returned unsorted on purpose: the triage must order them itself.
        return [(label, self.scores.get(label, 0.0)) for label in labels]
