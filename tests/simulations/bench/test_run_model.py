"""RunModel: the cache replays exactly, the seed reaches the model, endpoints are limited, a failure aborts the rest."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from agents.backends import ModelUnavailableError
from simulations.bench.callcache import SqliteCallCache
from simulations.bench.models import AttemptAborted, AttemptCalls, EndpointLimits, RunModel, endpoint_of


class CountingModel(BaseChatModel):
    """Answers "reply N" after ``delay`` seconds; records kwargs and how many calls were in flight at once."""

    delay: float = 0.0
    fail_with: Any = None
    calls: int = 0
    kwargs_seen: list[dict[str, Any]] = Field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    @property
    def _llm_type(self) -> str:
        return "counting-test"

    def _answer(self, kwargs: dict[str, Any]) -> ChatResult:
        self.calls += 1
        self.kwargs_seen.append(dict(kwargs))
        if self.fail_with is not None:
            raise self.fail_with
        message = AIMessage(
            content=f"reply {self.calls}",
            usage_metadata={"input_tokens": 40 + self.calls, "output_tokens": 5, "total_tokens": 45 + self.calls},
            response_metadata={"model": "openai:m@http://h:1/v1", "wall_seconds": 1.5, "finish_reason": "stop",
                               "thinking": None, "raw": object()},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return self._answer(kwargs)

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                         **kwargs: Any) -> ChatResult:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            return self._answer(kwargs)
        finally:
            self.in_flight -= 1


def counting(**fields: Any) -> CountingModel:
    return CountingModel(**fields)


PROMPT = [SystemMessage(content="You are a patient."), HumanMessage(content="Where does it hurt?")]


async def test_miss_then_hit_calls_inner_once_and_replays_exactly(tmp_path: Path) -> None:
    inner = counting()
    calls = AttemptCalls()
    with SqliteCallCache(tmp_path / "calls.sqlite") as cache:
        model = RunModel(inner=inner, spec="openai:m@http://h:1/v1", role="patient", seed=5, temperature=0.0,
                         call_cache=cache, calls=calls)
        first = await model.ainvoke(PROMPT, max_new_tokens=32)
        second = await model.ainvoke(PROMPT, max_new_tokens=32)
        assert inner.calls == 1 and (calls.hits, calls.misses) == (1, 1)
        assert second.content == first.content == "reply 1"
        assert second.usage_metadata == first.usage_metadata
        assert second.response_metadata["cache_hit"] is True and first.response_metadata["cache_hit"] is False
        assert second.response_metadata["model"] == "openai:m@http://h:1/v1"
        assert second.response_metadata["wall_seconds"] < 1.0  # our own clock, not the stored 1.5 s
        assert "raw" not in second.response_metadata  # not JSON: left out of the cache
        # A different generation parameter is a different call.
        await model.ainvoke(PROMPT, max_new_tokens=33)
        assert inner.calls == 2
        # Another attempt (fresh AttemptCalls, new wrapper) with the same seed replays from the file.
        again = RunModel(inner=counting(), spec="openai:m@http://h:1/v1", role="patient", seed=5,
                         temperature=0.0, call_cache=cache, calls=AttemptCalls())
        assert (await again.ainvoke(PROMPT, max_new_tokens=32)).content == "reply 1"
        assert again.calls.hits == 1 and again.inner.calls == 0


async def test_other_seed_misses_the_cache(tmp_path: Path) -> None:
    with SqliteCallCache(tmp_path / "calls.sqlite") as cache:
        for seed in (1, 2):
            model = RunModel(inner=counting(), spec="embedded", role="reasoning", seed=seed, call_cache=cache,
                             calls=AttemptCalls())
            await model.ainvoke(PROMPT)
            assert model.calls.misses == 1 and model.inner.calls == 1


async def test_seed_and_generation_kwargs_reach_the_inner_model() -> None:
    inner = counting()
    model = RunModel(inner=inner, spec="embedded", role="reasoning", seed=1234, calls=AttemptCalls())
    await model.ainvoke(PROMPT, max_new_tokens=7, json_schema={"type": "object"})
    assert inner.kwargs_seen == [{"max_new_tokens": 7, "json_schema": {"type": "object"}, "seed": 1234}]
    unseeded = RunModel(inner=counting(), spec="embedded", role="reasoning", calls=AttemptCalls())
    await unseeded.ainvoke(PROMPT)
    assert "seed" not in unseeded.inner.kwargs_seen[0]
    model.invoke(PROMPT, max_new_tokens=9)  # the sync path passes the seed too
    assert inner.kwargs_seen[-1] == {"max_new_tokens": 9, "seed": 1234}


async def test_limiter_bounds_concurrent_calls() -> None:
    inner = counting(delay=0.05)
    limits = EndpointLimits(max_connections=2)
    spec = "openai:m@http://h:1/v1"
    model = RunModel(inner=inner, spec=spec, role="patient", limiter=limits.semaphore(spec), calls=AttemptCalls())
    async with asyncio.TaskGroup() as group:
        for index in range(10):
            group.create_task(model.ainvoke([HumanMessage(content=f"question {index}")]))
    assert inner.calls == 10 and inner.max_in_flight == 2
    unlimited = counting(delay=0.05)
    free = RunModel(inner=unlimited, spec=spec, role="patient", calls=AttemptCalls())
    await asyncio.gather(*(free.ainvoke(PROMPT) for _ in range(10)))
    assert unlimited.max_in_flight == 10  # the bound above came from the semaphore


async def test_endpoint_limits_share_one_semaphore_per_endpoint() -> None:
    limits = EndpointLimits(max_connections=8, local_connections=1)
    assert limits.semaphore("openai:a@http://h:1/v1") is limits.semaphore("openai:b@http://h:1/v1")
    assert limits.semaphore("openai:a@http://h:1/v1") is not limits.semaphore("openai:a@http://h:2/v1")
    local = limits.semaphore("embedded")
    assert local is limits.semaphore("embedded?device=cpu")
    await local.acquire()
    assert local.locked()  # one local slot
    local.release()


async def test_failure_aborts_every_later_call_of_the_attempt() -> None:
    calls = AttemptCalls()
    broken = counting(fail_with=ModelUnavailableError("http://h:1/v1 unreachable", url="http://h:1/v1"))
    healthy = counting()
    patient = RunModel(inner=broken, spec="openai:m@http://h:1/v1", role="patient", calls=calls)
    doctor = RunModel(inner=healthy, spec="embedded", role="reasoning", calls=calls)
    with pytest.raises(ModelUnavailableError):
        await patient.ainvoke(PROMPT)
    assert isinstance(calls.failure, ModelUnavailableError)
    assert calls.errors == ["patient: ModelUnavailableError: http://h:1/v1 unreachable"]
    with pytest.raises(AttemptAborted, match="patient: ModelUnavailableError"):
        await doctor.ainvoke(PROMPT)
    with pytest.raises(AttemptAborted):
        doctor.invoke(PROMPT)
    assert healthy.calls == 0 and broken.calls == 1


async def test_rejected_kwargs_are_not_an_attempt_failure() -> None:
    calls = AttemptCalls()
    picky = counting(fail_with=TypeError("generate() got an unexpected keyword argument 'json_schema'"))
    model = RunModel(inner=picky, spec="embedded", role="reasoning", calls=calls)
    with pytest.raises(TypeError):
        await model.ainvoke(PROMPT, json_schema={})
    assert calls.failure is None  # the caller retries without the kwargs (Doctor does)


def test_endpoint_of_each_spec_form() -> None:
    assert endpoint_of("openai:google/medgemma-27b-text-it@http://gpu-box:8000/v1/") == "http://gpu-box:8000/v1"
    assert endpoint_of("embedded") == "local:embedded"
    assert endpoint_of("embedded?device=cpu") == "local:embedded"
    assert endpoint_of("hf:google/medgemma-4b-it?device=cuda") == "local:google/medgemma-4b-it"
    assert endpoint_of("not a spec") == "not a spec"
