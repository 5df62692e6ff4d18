"""The model wrapper a benchmark attempt gives each role: call cache, per-endpoint limit, per-attempt seed, accounting.

``RunModel`` wraps a role's chat model for one attempt. Each call is looked up in the call cache (when there is
one) under ``call_key(spec, messages, params)``; a miss waits for a slot of the endpoint's semaphore, calls the
inner model with the attempt's seed, and stores the answer. All roles of one attempt share an ``AttemptCalls``:
it counts hits and misses, and once any call has failed, every later call of the attempt raises
``AttemptAborted`` at once instead of spending model time on an attempt that will be recorded as an error anyway.

A run builds one ``RunModel`` per role and shares it by all attempts (building and serialising LangChain models per
attempt cost more than a fast model call); the attempt's seed and ``AttemptCalls`` are set per attempt with
``attempt_scope``, a context variable that the asyncio tasks of that attempt inherit. Outside a scope the model's own
``seed`` and ``calls`` fields apply.

``EndpointLimits`` hands out one semaphore per endpoint (an OpenAI-compatible base URL, or the local process for
embedded and hf weights), so ``--concurrency`` cases never open more than ``max_connections`` requests to one
server, and local weights, which are shared by all roles and serialised anyway, are queued for cheaply.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, SkipValidation

from agents.backends import BackendError, ModelSpecError, parse_spec
from simulations.bench.callcache import call_key

__all__ = ["AttemptAborted", "AttemptCalls", "EndpointLimits", "RunModel", "attempt_scope", "endpoint_of"]


def endpoint_of(spec: str) -> str:
    """The endpoint a spec talks to: an openai spec's base URL, ``local:<model>`` for local weights, else the spec."""
    try:
        parsed = parse_spec(spec)
    except ModelSpecError:
        return spec
    if parsed.kind == "openai" and parsed.base_url:
        return parsed.base_url
    return f"local:{parsed.model or parsed.kind}"


class EndpointLimits:
    """One semaphore per endpoint, created on first use (inside the running event loop)."""

    def __init__(self, max_connections: int = 32, local_connections: int = 1) -> None:
        if max_connections < 1 or local_connections < 1:
            raise ValueError("max_connections and local_connections must be at least 1")
        self.max_connections = max_connections
        self.local_connections = local_connections
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    def semaphore(self, spec: str) -> asyncio.Semaphore:
        endpoint = endpoint_of(spec)
        held = self._semaphores.get(endpoint)
        if held is None:
            limit = self.local_connections if endpoint.startswith("local:") else self.max_connections
            held = self._semaphores[endpoint] = asyncio.Semaphore(limit)
        return held


class AttemptAborted(BackendError):
    """A call of an attempt in which an earlier model call already failed; the attempt is recorded as an error."""


@dataclass
class AttemptCalls:
    """Shared by every role's RunModel in one attempt: cache accounting and the first failure."""

    hits: int = 0
    misses: int = 0
    errors: list[str] = field(default_factory=list)
    failure: BaseException | None = None


@dataclass(frozen=True)
class _Scope:
    seed: int | None
    calls: AttemptCalls


_ATTEMPT: ContextVar[_Scope | None] = ContextVar("clinicflow_bench_attempt", default=None)


@contextmanager
def attempt_scope(seed: int | None, calls: AttemptCalls) -> Iterator[AttemptCalls]:
    """Within this block (and the tasks it starts), every RunModel call uses ``seed`` and counts into ``calls``."""
    token = _ATTEMPT.set(_Scope(seed, calls))
    try:
        yield calls
    finally:
        _ATTEMPT.reset(token)


def _json_safe(metadata: dict[str, Any]) -> dict[str, Any]:
    # The cache stores JSON; drop what cannot be stored (client objects, raw responses) rather than fail the call.
    kept: dict[str, Any] = {}
    for name, value in metadata.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[name] = value
    return kept


def _rejects_kwargs(exc: BaseException) -> bool:
    # A caller probing whether a foreign model takes our generation kwargs retries without them: not a failure.
    return isinstance(exc, TypeError) and "unexpected keyword argument" in str(exc)


class RunModel(BaseChatModel):
    """A role's chat model inside one attempt (see the module docstring). ``call_cache`` is a ``CallCache``.

    The field is not called ``cache``: that name is LangChain's own LLM-cache switch on every chat model.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    spec: str
    role: str
    seed: int | None = None
    temperature: float | None = None  # only part of the cache key; the inner model was built with it
    call_cache: Any = None
    limiter: Any = None  # an asyncio.Semaphore shared by every call to the same endpoint
    calls: SkipValidation[AttemptCalls] = Field(default_factory=AttemptCalls)  # shared, never copied
    cache: BaseCache | bool | None = False  # LangChain's global LLM cache must not answer in place of ours

    @property
    def _llm_type(self) -> str:
        return "clinicflow-run-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.spec, "role": self.role, "seed": self.seed}

    def _calls(self) -> AttemptCalls:
        scope = _ATTEMPT.get()
        return scope.calls if scope is not None else self.calls

    def _seed(self) -> int | None:
        scope = _ATTEMPT.get()
        return scope.seed if scope is not None else self.seed

    # -- shared steps ---------------------------------------------------------------------------------------------
    def _check_alive(self) -> None:
        failure = self._calls().failure
        if failure is not None:
            first = self._calls().errors[0] if self._calls().errors else f"{type(failure).__name__}: {failure}"
            raise AttemptAborted(f"an earlier model call of this attempt failed ({first}); {self.role} call skipped")

    def _key(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> str:
        params = {
            "max_new_tokens": kwargs.get("max_new_tokens"),
            "json_schema": kwargs.get("json_schema"),
            "stop": stop,
            "seed": self._seed(),
            "temperature": self.temperature,
        }
        return call_key(self.spec, messages, params)

    def _replay(self, key: str, started: float) -> ChatResult | None:
        stored = self.call_cache.get(key)
        if stored is None or "content" not in stored:
            return None
        self._calls().hits += 1
        metadata = {**(stored.get("response_metadata") or {}), "cache_hit": True,
                    "wall_seconds": time.perf_counter() - started}
        message = AIMessage(content=stored["content"], usage_metadata=stored.get("usage_metadata"),
                            response_metadata=metadata)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _store(self, key: str, result: ChatResult) -> None:
        message = result.generations[0].message
        usage = getattr(message, "usage_metadata", None)
        self.call_cache.put(key, {
            "content": message.content,
            "usage_metadata": dict(usage) if usage else None,
            "response_metadata": _json_safe(dict(message.response_metadata or {})),
        })
        message.response_metadata = {**(message.response_metadata or {}), "cache_hit": False}

    def _failed(self, exc: Exception) -> None:
        self._calls().errors.append(f"{self.role}: {type(exc).__name__}: {exc}")
        if self._calls().failure is None:
            self._calls().failure = exc

    def _inner_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**kwargs, "seed": self._seed()} if self._seed() is not None else dict(kwargs)

    def _lookup(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[str | None, ChatResult | None]:
        """Before a call: refuse if the attempt already failed; else the cache key and a replayed answer, if any."""
        self._check_alive()
        if self.call_cache is None:
            return None, None
        key = self._key(messages, stop, kwargs)
        replayed = self._replay(key, time.perf_counter())
        if replayed is None:
            self._calls().misses += 1
        return key, replayed

    def _after(self, key: str | None, result: ChatResult) -> ChatResult:
        if key is not None:
            self._store(key, result)
        return result

    def _record(self, exc: Exception) -> None:
        # A caller probing whether a foreign model takes our generation kwargs retries without them: not a failure.
        if not _rejects_kwargs(exc):
            self._failed(exc)

    # -- calls ------------------------------------------------------------------------------------------------
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        key, replayed = self._lookup(messages, stop, kwargs)
        if replayed is not None:
            return replayed
        try:
            # The private method directly: the public ainvoke would add LangChain's callback work to every call.
            async with self.limiter if self.limiter is not None else nullcontext():
                result = await self.inner._agenerate(messages, stop=stop, **self._inner_kwargs(kwargs))
        except Exception as exc:  # recorded against the attempt, then re-raised unchanged
            self._record(exc)
            raise
        return self._after(key, result)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        key, replayed = self._lookup(messages, stop, kwargs)
        if replayed is not None:
            return replayed
        try:
            result = self.inner._generate(messages, stop=stop, **self._inner_kwargs(kwargs))
        except Exception as exc:  # recorded against the attempt, then re-raised unchanged
            self._record(exc)
            raise
        return self._after(key, result)
