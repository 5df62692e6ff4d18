"""Chat model over an OpenAI-compatible ``/chat/completions`` endpoint (vLLM, TGI, Ollama, transformers serve).

httpx clients are created lazily per instance (the async one per event loop, since its connection pool is bound
to the loop that made it). Retries: 429, 5xx, timeouts and connection errors, with exponential backoff and
jitter, honouring Retry-After. The API key is a `SecretStr`, sent only as a bearer header and scrubbed from
every error text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field, PrivateAttr, SecretStr

from .errors import ModelRequestError, ModelTimeoutError, ModelUnavailableError
from .openai_wire import (
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
from .repetition import find_repeated_tail
from .results import make_result
from .thinking import split_thinking

__all__ = ["OpenAICompatChatModel"]

# httpcore's pool scans every connection for every queued request (quadratic in the connections held), which
# dominated the CPU of 32 concurrent benchmark attempts. Requests are spread over a few small pools instead; the
# caller bounds how many are in flight (a benchmark's per-endpoint limit), so no pool limit is the tighter one.
_POOL_SHARDS = 8
_POOL = httpx.Limits(max_connections=None, max_keepalive_connections=32)

# Transport failures worth retrying: the server may be restarting, overloaded or briefly unreachable.
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass
class _Attempt:
    """The outcome of one POST: a response, or the transport error that replaced it."""

    response: httpx.Response | None = None
    error: Exception | None = None

    @property
    def retryable(self) -> bool:
        if self.error is not None:
            return True
        assert self.response is not None
        return is_retryable_status(self.response.status_code)


class OpenAICompatChatModel(BaseChatModel):
    """An OpenAI-compatible server behind the LangChain chat interface.

    Per-call kwargs: ``max_new_tokens`` (int) overrides the cap; ``json_schema`` (dict) is sent as a strict
    ``response_format``; a server that refuses it is asked again without it, and remembered as refusing; ``seed``
    (int) overrides the instance seed for this call.
    """

    spec: str
    model_name: str
    base_url: str
    api_key: SecretStr | None = Field(default=None, repr=False)
    temperature: float = Field(default=0.0, ge=0.0)
    max_new_tokens: int = Field(default=512, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    seed: int | None = None
    backoff_base_s: float = Field(default=0.5, ge=0.0)
    # Test seams (httpx.MockTransport); real use leaves them None.
    transport: httpx.BaseTransport | None = Field(default=None, repr=False, exclude=True)
    async_transport: httpx.AsyncBaseTransport | None = Field(default=None, repr=False, exclude=True)

    _client: httpx.Client | None = PrivateAttr(default=None)
    _aclients: dict[int, tuple[asyncio.AbstractEventLoop, list[httpx.AsyncClient]]] = PrivateAttr(default_factory=dict)
    _turn: int = PrivateAttr(default=0)
    _schema_supported: bool | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "clinicflow-openai-compatible"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.spec, "temperature": self.temperature, "max_new_tokens": self.max_new_tokens}

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": "CLINICFLOW_API_KEY"}

    @property
    def schema_supported(self) -> bool | None:
        """None until a json_schema call happened; False once the server refused response_format."""
        return self._schema_supported

    # -- clients --------------------------------------------------------------------------------------------
    @property
    def _url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _secret(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def _headers(self) -> dict[str, str]:
        secret = self._secret()
        return {"Authorization": f"Bearer {secret}"} if secret else {}

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 10.0))

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout(), transport=self.transport)
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        held = self._aclients.get(id(loop))
        if held is None or held[0] is not loop:
            # Drop clients of loops that are gone; their pools cannot be reused from this loop.
            self._aclients = {k: v for k, v in self._aclients.items() if not v[0].is_closed()}
            shards = [
                httpx.AsyncClient(timeout=self._timeout(), transport=self.async_transport, limits=_POOL)
                for _ in range(_POOL_SHARDS)
            ]
            held = (loop, shards)
            self._aclients[id(loop)] = held
        self._turn = (self._turn + 1) % _POOL_SHARDS
        return held[1][self._turn]

    def close(self) -> None:
        """Close the sync client (the async ones close with `aclose`)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async clients of the running loop, and the sync client."""
        held = self._aclients.pop(id(asyncio.get_running_loop()), None)
        for client in held[1] if held is not None else ():
            await client.aclose()
        self.close()

    # -- retry loop -----------------------------------------------------------------------------------------
    def _next_delay(self, attempt_no: int, attempt: _Attempt) -> float | None:
        if not attempt.retryable or attempt_no >= self.max_retries:
            return None
        header = attempt.response.headers.get("retry-after") if attempt.response is not None else None
        return backoff_delay(attempt_no, base_s=self.backoff_base_s, retry_after=retry_after_seconds(header))

    def _give_up(self, attempt: _Attempt, attempts: int) -> ModelUnavailableError:
        if attempt.response is not None:
            status = attempt.response.status_code
            body = excerpt(scrub(attempt.response.text, self._secret()))
            return ModelUnavailableError(
                f"{self._url} kept failing: HTTP {status} after {attempts} attempts: {body!r}",
                url=self._url,
                status=status,
                attempts=attempts,
            )
        kind = type(attempt.error).__name__
        cls = ModelTimeoutError if isinstance(attempt.error, httpx.TimeoutException) else ModelUnavailableError
        return cls(
            f"{self._url} unreachable: {kind} after {attempts} attempts (timeout {self.timeout_s:g}s)",
            url=self._url,
            status=None,
            attempts=attempts,
        )

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        attempt_no = 0
        while True:
            try:
                attempt = _Attempt(response=self._sync_client().post(self._url, json=body, headers=self._headers()))
            except _RETRYABLE_ERRORS as exc:
                attempt = _Attempt(error=exc)
            if attempt.response is not None and not attempt.retryable:
                return attempt.response
            delay = self._next_delay(attempt_no, attempt)
            if delay is None:
                raise self._give_up(attempt, attempt_no + 1) from attempt.error
            time.sleep(delay)
            attempt_no += 1

    async def _apost(self, body: dict[str, Any]) -> httpx.Response:
        attempt_no = 0
        while True:
            try:
                response = await self._async_client().post(self._url, json=body, headers=self._headers())
                attempt = _Attempt(response=response)
            except _RETRYABLE_ERRORS as exc:
                attempt = _Attempt(error=exc)
            if attempt.response is not None and not attempt.retryable:
                return attempt.response
            delay = self._next_delay(attempt_no, attempt)
            if delay is None:
                raise self._give_up(attempt, attempt_no + 1) from attempt.error
            await asyncio.sleep(delay)
            attempt_no += 1

    # -- request / reply ------------------------------------------------------------------------------------
    def _body(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any], *, with_schema: bool
    ) -> dict[str, Any]:
        schema = kwargs.get("json_schema") if with_schema else None
        return build_body(
            model=self.model_name,
            messages=to_openai_messages(messages),
            max_tokens=int(kwargs.get("max_new_tokens") or self.max_new_tokens),
            temperature=self.temperature,
            seed=kwargs.get("seed", self.seed),
            stop=stop,
            json_schema=schema,
        )

    def _wants_schema(self, kwargs: Mapping[str, Any]) -> bool:
        return kwargs.get("json_schema") is not None and self._schema_supported is not False

    def _refused(self, response: httpx.Response) -> ModelRequestError:
        status = response.status_code
        body = excerpt(scrub(response.text, self._secret()))
        return ModelRequestError(
            f"{self._url} refused the request: HTTP {status}: {body!r}", url=self._url, status=status
        )

    def _result(self, response: httpx.Response, prompt_chars: int, started: float, mode: str | None) -> ChatResult:
        parsed = parse_completion(response.text, url=self._url, secret=self._secret())
        answer, thinking = split_thinking(parsed.content)
        if parsed.reasoning:
            thinking = f"{parsed.reasoning.strip()}\n\n{thinking}" if thinking else parsed.reasoning.strip()
        finish = "length" if parsed.finish_reason == "length" else "stop"
        if finish == "length":
            tail = find_repeated_tail(answer, min_period=8, max_period=400)
            if tail is not None:
                answer, finish = answer[: len(answer) - tail.surplus].rstrip(), "repetition"
        estimated = parsed.prompt_tokens is None or parsed.completion_tokens is None
        # Roughly four characters per token for English; only used when the server sends no usage block.
        input_tokens = parsed.prompt_tokens if parsed.prompt_tokens is not None else max(1, prompt_chars // 4)
        output_tokens = (
            parsed.completion_tokens
            if parsed.completion_tokens is not None
            else max(0, (len(parsed.content) + len(parsed.reasoning or "")) // 4)
        )
        return make_result(
            text=answer,
            thinking=thinking,
            spec=self.spec,
            wall_seconds=time.perf_counter() - started,
            finish_reason=finish,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            extra={
                "usage_estimated": estimated,
                "structured_output": mode,
                "server_finish_reason": parsed.finish_reason,
            },
        )

    @staticmethod
    def _prompt_chars(body: Mapping[str, Any]) -> int:
        # Only text counts: an inline image's base64 would inflate the estimate a thousandfold.
        total = 0
        for message in body["messages"]:
            content = message.get("content", "")
            if isinstance(content, str):
                total += len(content)
            else:
                total += sum(len(str(p.get("text", ""))) for p in content if p.get("type") == "text")
        return total

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        started = time.perf_counter()
        with_schema = self._wants_schema(kwargs)
        body = self._body(messages, stop, kwargs, with_schema=with_schema)
        response = self._post(body)
        if response.status_code >= 400 and with_schema and rejects_response_format(response.status_code, response.text):
            retry = self._post(self._body(messages, stop, kwargs, with_schema=False))
            if retry.status_code < 400:
                self._schema_supported = False  # only once the plain request worked: the schema was the problem
            return self._finish(retry, body, started, mode="none")
        if with_schema and response.status_code < 400:
            self._schema_supported = True
        return self._finish(response, body, started, mode=self._mode(kwargs, with_schema))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        started = time.perf_counter()
        with_schema = self._wants_schema(kwargs)
        body = self._body(messages, stop, kwargs, with_schema=with_schema)
        response = await self._apost(body)
        if response.status_code >= 400 and with_schema and rejects_response_format(response.status_code, response.text):
            retry = await self._apost(self._body(messages, stop, kwargs, with_schema=False))
            if retry.status_code < 400:
                self._schema_supported = False
            return self._finish(retry, body, started, mode="none")
        if with_schema and response.status_code < 400:
            self._schema_supported = True
        return self._finish(response, body, started, mode=self._mode(kwargs, with_schema))

    @staticmethod
    def _mode(kwargs: Mapping[str, Any], with_schema: bool) -> str | None:
        if kwargs.get("json_schema") is None:
            return None
        return "json_schema" if with_schema else "none"

    def _finish(
        self, response: httpx.Response, body: Mapping[str, Any], started: float, mode: str | None
    ) -> ChatResult:
        if response.status_code >= 400:
            raise self._refused(response)
        return self._result(response, self._prompt_chars(body), started, mode)
