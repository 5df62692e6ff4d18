"""Pure pieces of the OpenAI-compatible backend: request bodies, reply parsing, retry decisions.

Kept free of I/O so the rules (what is retried, how long to wait, what counts as a broken reply) are unit-tested
directly, and the sync and async clients in `openai_chat.py` share them.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from langchain_core.messages import BaseMessage

from .chat_format import to_role_messages
from .errors import ModelResponseError, UnsupportedInputError

__all__ = [
    "ParsedCompletion",
    "backoff_delay",
    "build_body",
    "excerpt",
    "is_retryable_status",
    "parse_completion",
    "rejects_response_format",
    "retry_after_seconds",
    "scrub",
    "to_openai_messages",
]

MAX_BACKOFF_S = 30.0  # a single wait never exceeds this, whatever Retry-After says, so callers never hang


def scrub(text: str, secret: str | None) -> str:
    """Remove the API key from text that goes into an error (servers sometimes echo request headers)."""
    return text.replace(secret, "***") if secret else text


def excerpt(text: str, limit: int = 200) -> str:
    """A one-line, bounded preview of a body for error messages (an HTML error page, a proxy banner)."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _openai_block(block: Any, role: str) -> dict[str, Any]:
    if isinstance(block, str):
        return {"type": "text", "text": block}
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":
        return {"type": "text", "text": str(block.get("text", ""))}
    if kind == "image_url":
        inner = block.get("image_url")
        # Older LangChain callers put the URL string straight in; the wire format wants {"url": ...}.
        if isinstance(inner, str) and inner:
            return {"type": "image_url", "image_url": {"url": inner}}
        if isinstance(inner, dict) and inner.get("url"):
            return {"type": "image_url", "image_url": dict(inner)}
        raise UnsupportedInputError(f"a {role} message holds an image_url block without image_url.url")
    if kind == "image":
        # LangChain's standard image block: by url, or inline base64 with a mime type.
        if block.get("url"):
            return {"type": "image_url", "image_url": {"url": block["url"]}}
        data = block.get("base64") or block.get("data")
        if data:
            mime = block.get("mime_type", "image/png")
            return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}
    raise UnsupportedInputError(f"a {role} message holds a {kind!r} block the OpenAI-compatible backend cannot send")


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Chat-completions messages; text stays a string, mixed content becomes text/image_url parts."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message.content, list) and any(
            isinstance(b, dict) and b.get("type") != "text" for b in message.content
        ):
            role = to_role_messages([message.model_copy(update={"content": ""})])[0]["role"]
            out.append({"role": role, "content": [_openai_block(b, role) for b in message.content]})
        else:
            out.extend(to_role_messages([message]))
    return out


def build_body(
    *,
    model: str,
    messages: list[dict[str, Any]],
    max_tokens: int,
    temperature: float,
    seed: int | None,
    stop: list[str] | None,
    json_schema: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The JSON body of POST /chat/completions; optional fields are left out rather than sent as null."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    if seed is not None:
        body["seed"] = seed
    if stop:
        body["stop"] = list(stop)
    if json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": dict(json_schema), "strict": True},
        }
    return body


@dataclass(frozen=True)
class ParsedCompletion:
    """What the backend needs from a chat-completions reply."""

    content: str
    reasoning: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_completion(text: str, *, url: str, secret: str | None = None) -> ParsedCompletion:
    """Read a 200 reply; anything that is not a JSON chat completion with a choice is a `ModelResponseError`."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ModelResponseError(
            f"{url} answered 200 with a body that is not JSON: {excerpt(scrub(text, secret))!r}", url=url, status=200
        ) from exc
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelResponseError(
            f"{url} answered 200 without choices: {excerpt(scrub(text, secret))!r}", url=url, status=200
        )
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content = message.get("content")
    if isinstance(content, list):  # some servers return content parts even for text
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    # vLLM's reasoning parsers put the thinking in its own field.
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return ParsedCompletion(
        content=content if isinstance(content, str) else "",
        reasoning=reasoning if isinstance(reasoning, str) and reasoning.strip() else None,
        finish_reason=choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None,
        prompt_tokens=_optional_int(usage.get("prompt_tokens")),
        completion_tokens=_optional_int(usage.get("completion_tokens")),
    )


def is_retryable_status(status: int) -> bool:
    """429 (rate limited) and 5xx (overloaded, restarting, proxy errors) are worth another try; 501 is not."""
    return status == 429 or (500 <= status <= 599 and status != 501)


def rejects_response_format(status: int, body: str) -> bool:
    """Did the server refuse the JSON-schema response_format (so a retry without it may succeed)?"""
    if status in (400, 422):
        return True
    return (
        400 <= status < 500 and status not in (401, 403, 429) and bool(re.search(r"response_format|json_schema", body))
    )


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import datetime

        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError, IndexError):
        return None


def backoff_delay(
    attempt: int, *, base_s: float, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Wait before retry number ``attempt`` (0-based): exponential with jitter, or what the server asked for."""
    if retry_after is not None:
        return min(retry_after, MAX_BACKOFF_S)
    ceiling = min(MAX_BACKOFF_S, base_s * (2**attempt))
    # Jitter in the upper half keeps clients from retrying in lockstep without ever retrying instantly.
    return ceiling * (0.5 + 0.5 * (rng or random).random())
