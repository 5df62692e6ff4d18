"""Unit tests of the pure request/reply rules, and of the client code through httpx.MockTransport."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from agents.backends import (
    ModelRequestError,
    ModelResponseError,
    ModelUnavailableError,
    UnsupportedInputError,
    build_chat_model,
)
from agents.backends.openai_chat import OpenAICompatChatModel
from agents.backends.openai_wire import (
    MAX_BACKOFF_S,
    backoff_delay,
    build_body,
    excerpt,
    is_retryable_status,
    parse_completion,
    rejects_response_format,
    retry_after_seconds,
    scrub,
    to_openai_messages,
)

URL = "http://llm.test/v1/chat/completions"


def _reply(content: str = "ok", **extra) -> dict:
    return {
        "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
        **extra,
    }


def test_body_leaves_out_unset_fields() -> None:
    body = build_body(model="m", messages=[], max_tokens=9, temperature=0.0, seed=None, stop=None, json_schema=None)
    assert body == {"model": "m", "messages": [], "max_tokens": 9, "temperature": 0.0}
    full = build_body(
        model="m", messages=[], max_tokens=9, temperature=0.2, seed=3, stop=["\n"], json_schema={"type": "object"}
    )
    assert full["seed"] == 3 and full["stop"] == ["\n"]
    assert full["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": {"type": "object"}, "strict": True},
    }


def test_messages_keep_system_and_convert_images() -> None:
    msgs = to_openai_messages(
        [
            SystemMessage("sys"),
            HumanMessage(
                content=[
                    {"type": "text", "text": "look"},
                    {"type": "image", "base64": "AAAA", "mime_type": "image/jpeg"},
                    {"type": "image", "url": "https://x/y.png"},
                ]
            ),
            AIMessage("seen"),
        ]
    )
    assert msgs[0] == {"role": "system", "content": "sys"}
    assert msgs[1]["role"] == "user" and msgs[1]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
    ]
    assert msgs[2] == {"role": "assistant", "content": "seen"}
    with pytest.raises(UnsupportedInputError):
        to_openai_messages([HumanMessage(content=[{"type": "audio", "url": "x"}])])


def test_parse_reads_content_reasoning_usage() -> None:
    parsed = parse_completion(
        json.dumps(
            _reply(
                "hi",
            )
        ),
        url=URL,
    )
    assert (parsed.content, parsed.finish_reason, parsed.prompt_tokens, parsed.completion_tokens) == (
        "hi",
        "stop",
        5,
        2,
    )
    vllm = {"choices": [{"message": {"content": "x", "reasoning_content": "why"}, "finish_reason": "length"}]}
    parsed = parse_completion(json.dumps(vllm), url=URL)
    assert parsed.reasoning == "why" and parsed.prompt_tokens is None


@pytest.mark.parametrize(
    "body", ["<html><body>Bad gateway</body></html>", "", '{"choices": []}', '{"error": "x"}', "[1, 2]"]
)
def test_parse_rejects_non_completions(body: str) -> None:
    with pytest.raises(ModelResponseError) as info:
        parse_completion(body, url=URL)
    assert URL in str(info.value)


def test_error_excerpts_are_short_one_line_and_scrubbed() -> None:
    text = "<html>\n" + "x" * 1000 + " key sk-123 </html>"
    short = excerpt(scrub(text, "sk-123"))
    assert "\n" not in short and len(short) <= 203 and short.endswith("...")
    assert scrub("Bearer sk-123", "sk-123") == "Bearer ***" and scrub("a", None) == "a"


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (501, False),
        (400, False),
        (401, False),
        (404, False),
        (200, False),
    ],
)
def test_retryable_statuses(status: int, retry: bool) -> None:
    assert is_retryable_status(status) is retry


def test_response_format_rejection_detection() -> None:
    assert rejects_response_format(400, "anything")
    assert rejects_response_format(422, "")
    assert rejects_response_format(404, "unknown field response_format")
    assert not rejects_response_format(401, "response_format")
    assert not rejects_response_format(429, "response_format")
    assert not rejects_response_format(404, "model not found")


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_after_seconds(future) <= 30


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(0)
    delays = [backoff_delay(n, base_s=1.0, rng=rng) for n in range(4)]
    for n, delay in enumerate(delays):
        assert 0.5 * 2**n <= delay <= 2**n
    assert backoff_delay(20, base_s=1.0) <= MAX_BACKOFF_S
    assert backoff_delay(0, base_s=1.0, retry_after=2.5) == 2.5
    assert backoff_delay(0, base_s=1.0, retry_after=3600) == MAX_BACKOFF_S


def _model(handler, **kwargs) -> OpenAICompatChatModel:
    model = build_chat_model("openai:med/gemma@http://llm.test/v1", **kwargs)
    assert isinstance(model, OpenAICompatChatModel)
    model.transport = httpx.MockTransport(handler)
    model.async_transport = httpx.MockTransport(handler)
    model.backoff_base_s = 0.0
    return model


def test_request_shape_and_auth_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_reply("fine"))

    reply = _model(handler, api_key="sk-live", seed=7, max_new_tokens=33).invoke("hi", max_new_tokens=5)
    body = json.loads(seen[0].content)
    assert str(seen[0].url) == URL and seen[0].headers["authorization"] == "Bearer sk-live"
    assert body == {
        "model": "med/gemma",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 5,
        "temperature": 0.0,
        "seed": 7,
    }
    assert reply.content == "fine" and reply.usage_metadata == {
        "input_tokens": 5,
        "output_tokens": 2,
        "total_tokens": 7,
    }
    assert "sk-live" not in json.dumps(reply.response_metadata, default=str)

    _model(handler).invoke("hi")
    assert "authorization" not in seen[1].headers  # no key, no header


def test_a_per_call_seed_overrides_the_instance_seed() -> None:
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=_reply("fine"))

    model = _model(handler, seed=7)
    model.invoke("hi", seed=123)
    model.invoke("hi")
    assert [body["seed"] for body in seen] == [123, 7]


async def test_async_retries_through_mock_transport() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        if calls == 2:
            return httpx.Response(502, text="bad gateway")
        return httpx.Response(200, json=_reply("third time"))

    model = _model(handler, max_retries=2)
    reply = await model.ainvoke("hi")
    assert reply.content == "third time" and calls == 3
    await model.aclose()


def test_not_retried_on_client_errors() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(404, json={"error": "model med/gemma not found"})

    with pytest.raises(ModelRequestError) as info:
        _model(handler, max_retries=3).invoke("hi")
    assert calls == 1 and info.value.status == 404 and "not found" in str(info.value)


def test_unavailable_after_retries_reports_status_and_attempts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="overloaded")

    with pytest.raises(ModelUnavailableError) as info:
        _model(handler, max_retries=2).invoke("hi")
    assert (info.value.status, info.value.attempts, info.value.url) == (503, 3, URL)
