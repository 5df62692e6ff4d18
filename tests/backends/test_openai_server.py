"""The OpenAI-compatible backend against real HTTP servers on 127.0.0.1: a misbehaving stdlib server, and a
real `transformers serve` of the converted embedded checkpoint."""

from __future__ import annotations

import time
import traceback
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agents.backends import (
    BackendError,
    ModelRequestError,
    ModelResponseError,
    ModelTimeoutError,
    ModelUnavailableError,
    build_chat_model,
)
from agents.backends.openai_chat import OpenAICompatChatModel

from .conftest import BENCH, _free_port
from .fake_server import FakeOpenAIServer

KEY = "sk-test-DO-NOT-LEAK-4f9a"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def _model(server: FakeOpenAIServer, scenario: str, test_id: str, **kwargs) -> OpenAICompatChatModel:
    options = {"max_retries": 3, "timeout_s": 5.0, "api_key": KEY, **kwargs}
    model = build_chat_model(f"openai:fake-model@{server.url(scenario, test_id)}", **options)
    assert isinstance(model, OpenAICompatChatModel)
    model.backoff_base_s = 0.01  # keep the suite fast; the backoff formula has its own unit test
    return model


def _no_key_anywhere(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))
    assert KEY not in text and KEY not in repr(exc)


def test_two_500s_then_success(fake_server: FakeOpenAIServer, test_id: str) -> None:
    reply = _model(fake_server, "flaky", test_id).invoke("hi")
    assert reply.content == "recovered"
    assert len(fake_server.requests[f"flaky-{test_id}"]) == 3
    assert reply.response_metadata["usage_estimated"] is False


async def test_two_500s_then_success_async(fake_server: FakeOpenAIServer, test_id: str) -> None:
    model = _model(fake_server, "flaky", test_id)
    reply = await model.ainvoke("hi")
    assert reply.content == "recovered"
    await model.aclose()


def test_always_failing_gives_typed_error_after_retries(fake_server: FakeOpenAIServer, test_id: str) -> None:
    with pytest.raises(ModelUnavailableError) as info:
        _model(fake_server, "down", test_id, max_retries=2).invoke("hi")
    err = info.value
    assert err.status == 503 and err.attempts == 3 and err.url.startswith(fake_server.url("down", test_id))
    assert "503" in str(err) and "overloaded" in str(err)
    assert len(fake_server.requests[f"down-{test_id}"]) == 3
    _no_key_anywhere(err)


def test_retry_after_is_honoured(fake_server: FakeOpenAIServer, test_id: str) -> None:
    started = time.perf_counter()
    reply = _model(fake_server, "ratelimit", test_id).invoke("hi")
    assert reply.content == "after waiting"
    assert time.perf_counter() - started >= 0.9  # the server said 1 s; our own backoff would be 0.01 s


def test_slow_server_times_out_without_hanging(fake_server: FakeOpenAIServer, test_id: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ModelTimeoutError) as info:
        _model(fake_server, "slow", test_id, timeout_s=0.5, max_retries=1).invoke("hi")
    assert time.perf_counter() - started < 2.5  # two attempts of 0.5 s, not the server's 3 s each
    assert info.value.attempts == 2 and "ReadTimeout" in str(info.value)
    assert isinstance(info.value, ModelUnavailableError)


async def test_slow_server_times_out_async(fake_server: FakeOpenAIServer, test_id: str) -> None:
    model = _model(fake_server, "slow", test_id, timeout_s=0.5, max_retries=0)
    with pytest.raises(ModelTimeoutError):
        await model.ainvoke("hi")
    await model.aclose()


def test_html_page_is_a_response_error(fake_server: FakeOpenAIServer, test_id: str) -> None:
    with pytest.raises(ModelResponseError) as info:
        _model(fake_server, "html", test_id).invoke("hi")
    text = str(info.value)
    assert fake_server.url("html", test_id) in text and "502 Bad Gateway" in text and "not JSON" in text
    assert len(fake_server.requests[f"html-{test_id}"]) == 1  # a 200 is not retried


def test_no_choices_is_a_response_error(fake_server: FakeOpenAIServer, test_id: str) -> None:
    with pytest.raises(ModelResponseError, match="without choices"):
        _model(fake_server, "nochoices", test_id).invoke("hi")


def test_response_format_rejected_then_remembered(fake_server: FakeOpenAIServer, test_id: str) -> None:
    model = _model(fake_server, "noschema", test_id)
    first = model.invoke("answer yes", json_schema=SCHEMA)
    assert first.content == '{"answer": "yes"}'
    assert first.response_metadata["structured_output"] == "none" and model.schema_supported is False
    second = model.invoke("answer yes", json_schema=SCHEMA)
    assert second.content == '{"answer": "yes"}'
    sent = [body for _, body in fake_server.requests[f"noschema-{test_id}"]]
    assert ["response_format" in b for b in sent] == [True, False, False]  # asked once, then never again
    assert sent[0]["response_format"]["json_schema"]["strict"] is True


def test_key_never_leaks_even_when_server_echoes_it(fake_server: FakeOpenAIServer, test_id: str) -> None:
    model = _model(fake_server, "echoauth", test_id, max_retries=1)
    with pytest.raises(ModelUnavailableError) as info:
        model.invoke("hi")
    headers, _ = fake_server.requests[f"echoauth-{test_id}"][0]
    assert headers["Authorization"] == f"Bearer {KEY}"  # it was sent...
    assert "Bearer ***" in str(info.value)  # ...and scrubbed from what the server echoed
    _no_key_anywhere(info.value)
    with pytest.raises(ModelRequestError) as denied:
        _model(fake_server, "deny", test_id).invoke("hi")
    assert denied.value.status == 401
    _no_key_anywhere(denied.value)
    assert KEY not in repr(model) and KEY not in str(model.model_dump()) and KEY not in str(model._identifying_params)


def test_missing_usage_is_estimated_and_flagged(fake_server: FakeOpenAIServer, test_id: str) -> None:
    reply = _model(fake_server, "nousage", test_id).invoke("a prompt of some length")
    usage = reply.usage_metadata
    assert usage["input_tokens"] > 0 and usage["output_tokens"] == len("twelve characters") // 4
    assert reply.response_metadata["usage_estimated"] is True


def test_thinking_is_split_from_server_reply(fake_server: FakeOpenAIServer, test_id: str) -> None:
    reply = _model(fake_server, "thinking", test_id).invoke("chest pain")
    assert reply.content == "Order an ECG."
    assert reply.response_metadata["thinking"] == "The patient is tachycardic."


def test_cut_off_loop_is_reported_as_repetition(fake_server: FakeOpenAIServer, test_id: str) -> None:
    reply = _model(fake_server, "loop", test_id).invoke("x")
    assert reply.response_metadata["finish_reason"] == "repetition"
    assert reply.content == "Start. I am sorry for that."


def test_connection_refused_is_unavailable() -> None:
    model = build_chat_model(f"openai:m@http://127.0.0.1:{_free_port()}/v1", max_retries=1, api_key=KEY)
    model.backoff_base_s = 0.01
    with pytest.raises(ModelUnavailableError) as info:
        model.invoke("hi")
    assert "ConnectError" in str(info.value) and info.value.status is None
    assert isinstance(info.value, BackendError)
    _no_key_anywhere(info.value)


# --- a real `transformers serve` --------------------------------------------------------------------------------


@pytest.mark.slow
def test_transformers_serve_chat(serve_url: str, embedded_checkpoint: Path) -> None:
    spec = f"openai:{embedded_checkpoint}@{serve_url}"
    model = build_chat_model(spec, max_new_tokens=8, timeout_s=120, max_retries=1, seed=1)
    started = time.perf_counter()
    reply = model.invoke([SystemMessage("You are a concise clinician."), HumanMessage("Name one heart disease.")])
    BENCH["transformers serve: 8-token completion, first request"] = f"{time.perf_counter() - started:.2f} s"
    assert reply.content.strip()
    assert reply.response_metadata["model"] == spec and reply.response_metadata["usage_estimated"] is False
    usage = reply.usage_metadata
    assert usage["input_tokens"] > 10 and 0 < usage["output_tokens"] <= 8
    assert reply.response_metadata["finish_reason"] in {"stop", "length"}


@pytest.mark.slow
async def test_transformers_serve_async_and_override(serve_url: str, embedded_checkpoint: Path) -> None:
    model = build_chat_model(f"openai:{embedded_checkpoint}@{serve_url}", max_new_tokens=50, timeout_s=120)
    started = time.perf_counter()
    reply = await model.ainvoke("Say hello.", max_new_tokens=3)
    BENCH["transformers serve: 3-token completion, warm"] = f"{time.perf_counter() - started:.2f} s"
    assert reply.usage_metadata["output_tokens"] <= 3
    assert reply.response_metadata["finish_reason"] == "length"
    await model.aclose()


@pytest.mark.slow
def test_transformers_serve_refuses_unknown_model(serve_url: str) -> None:
    with pytest.raises(ModelRequestError) as info:
        build_chat_model(f"openai:not-the-served-model@{serve_url}", max_retries=3).invoke("hi")
    assert info.value.status == 400 and "pinned" in str(info.value)
