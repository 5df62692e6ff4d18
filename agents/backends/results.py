"""Build the `ChatResult` every backend returns, so the contract lives in one place.

Contract (other packages code against it): ``content`` is the answer without thinking; ``usage_metadata`` has
input/output/total tokens; ``response_metadata`` has ``model`` (the spec string), ``wall_seconds``,
``finish_reason`` ("stop" | "length" | "repetition") and ``thinking`` (None when there was none).
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import AIMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult

__all__ = ["FINISH_REASONS", "FinishReason", "make_result"]

FinishReason = Literal["stop", "length", "repetition"]
FINISH_REASONS: tuple[str, ...] = ("stop", "length", "repetition")


def make_result(
    *,
    text: str,
    thinking: str | None,
    spec: str,
    wall_seconds: float,
    finish_reason: str,
    input_tokens: int,
    output_tokens: int,
    extra: dict[str, Any] | None = None,
) -> ChatResult:
    """Wrap a cleaned answer and its bookkeeping into a single-generation `ChatResult`."""
    if finish_reason not in FINISH_REASONS:
        raise ValueError(f"finish_reason must be one of {FINISH_REASONS}, not {finish_reason!r}")
    usage = UsageMetadata(
        input_tokens=int(input_tokens),
        output_tokens=int(output_tokens),
        total_tokens=int(input_tokens) + int(output_tokens),
    )
    metadata: dict[str, Any] = {
        **(extra or {}),
        "model": spec,
        "wall_seconds": float(wall_seconds),
        "finish_reason": finish_reason,
        "thinking": thinking,
    }
    message = AIMessage(content=text, usage_metadata=usage, response_metadata=metadata)
    return ChatResult(generations=[ChatGeneration(message=message)])
