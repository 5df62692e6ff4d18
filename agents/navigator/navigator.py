"""The record navigator: the two model-driven steps of answering a question from a patient's record.

``Navigator(model).plan(...)`` chooses what to fetch; ``Navigator(model).answer(...)`` answers from numbered fact
lines with ``[Type/id]`` citations. Neither raises because of the model. Each step is:

1. one call, read tolerantly (``plan.parse_plan`` / ``answer.parse_answer``);
2. if unusable, one repair call (the bad reply and the reason appended);
3. if still unusable, or on a model error, a deterministic result: ``plan.keyword_plan`` for the plan,
   ``answer.extractive_answer`` (the most relevant fact lines, each cited) for the answer.

With no facts at all the answer step makes no call: there is nothing to cite. What happened (calls, tokens,
``degraded``, the reason) is on the returned ``PlanTurn`` / ``AnswerTurn``. ``asyncio.CancelledError`` passes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from time import perf_counter
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agents.backends import split_thinking
from agents.model_calls import GenerationCall
from agents.navigator.answer import (
    Fact,
    answer_json_schema,
    extractive_answer,
    parse_answer,
    select_facts,
)
from agents.navigator.dates import DateWindow, describe_window
from agents.navigator.plan import (
    Catalog,
    FetchPlan,
    keyword_plan,
    parse_plan,
    plan_json_schema,
)
from agents.navigator.prompts import (
    answer_messages,
    answer_repair_messages,
    plan_messages,
    plan_repair_messages,
)

__all__ = ["AnswerTurn", "Navigator", "PlanTurn", "StepCost"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class StepCost:
    """What one step's model calls cost and how they went."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    model: str | None = None
    degraded: bool = False  # the deterministic fallback replaced the model's output
    reason: str = ""  # the parse reason of the last call, or why no call was made
    error: str | None = None  # a model error, "Type: message"


@dataclass(frozen=True)
class PlanTurn:
    plan: FetchPlan
    cost: StepCost


@dataclass(frozen=True)
class AnswerTurn:
    text: str
    cost: StepCost


@dataclass
class _Calls(Generic[T]):
    """Replies of one step (at most two: the first call and its repair) and the result they gave."""

    result: T | None = None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None
    reasons: list[str] = field(default_factory=list)
    error: str | None = None

    def read(self, message: Any) -> str:
        if isinstance(message, BaseMessage):
            content, metadata = str(message.text), message.response_metadata or {}
            usage = getattr(message, "usage_metadata", None) or {}
        else:
            content, metadata, usage = str(message), {}, {}
        self.input_tokens += int(usage.get("input_tokens") or 0)
        self.output_tokens += int(usage.get("output_tokens") or 0)
        model = metadata.get("model") or metadata.get("model_name")
        self.model = str(model) if model else self.model
        return split_thinking(content)[0]  # backends strip thinking already; this covers foreign models


class Navigator:
    """Plans fetches and answers questions over a patient's record, driven by ``model`` (a langchain-core chat model).

    ``plan_tokens`` / ``answer_tokens`` cap each call's reply; ``max_facts`` caps the fact lines the model reads
    (the most relevant are kept, newest first). ``schema_hint`` passes the JSON Schema of each step's output
    (servers with constrained decoding enforce it; the local backend stops at the closing brace).
    """

    def __init__(
        self,
        model: BaseChatModel,
        *,
        plan_tokens: int = 192,
        answer_tokens: int = 320,
        max_facts: int = 40,
        schema_hint: bool = True,
    ) -> None:
        if min(plan_tokens, answer_tokens, max_facts) < 1:
            raise ValueError("plan_tokens, answer_tokens and max_facts must be at least 1")
        self.model = model
        self.plan_tokens = plan_tokens
        self.answer_tokens = answer_tokens
        self.max_facts = max_facts
        self.schema_hint = schema_hint
        self._caller = GenerationCall(model)

    async def _invoke(self, messages: list[BaseMessage], max_new_tokens: int, schema: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens}
        if self.schema_hint:
            kwargs["json_schema"] = schema
        return await self._caller.ainvoke(messages, **kwargs)

    async def _step(
        self,
        messages: list[BaseMessage],
        parse: Callable[[str], tuple[T | None, str]],
        repair: Callable[[str, str], list[BaseMessage]],
        max_new_tokens: int,
        schema: dict[str, Any],
    ) -> _Calls[T]:
        """One call, and a repair call if its reply is unusable; model errors are recorded, never raised."""
        calls: _Calls[T] = _Calls()
        try:
            calls.calls += 1  # counted when made, so a call that fails still counts
            text = calls.read(await self._invoke(messages, max_new_tokens, schema))
            calls.result, reason = parse(text)
            calls.reasons.append(reason)
            if calls.result is None:
                calls.calls += 1
                text = calls.read(await self._invoke(repair(text, reason), max_new_tokens, schema))
                calls.result, reason = parse(text)
                calls.reasons.append(reason)
        except Exception as exc:  # noqa: BLE001 - any model failure degrades the step; recorded, never hidden
            calls.error = f"{type(exc).__name__}: {exc}"
            calls.reasons.append("model error")
            logger.warning("navigator model call failed: %s", calls.error)
        return calls

    @staticmethod
    def _cost(calls: _Calls[Any], started: float) -> StepCost:
        reasons = calls.reasons or ["no call made"]
        reason = reasons[-1] if len(reasons) == 1 else f"{reasons[-1]} after repair (first: {reasons[0]})"
        return StepCost(
            calls=calls.calls,
            input_tokens=calls.input_tokens,
            output_tokens=calls.output_tokens,
            seconds=perf_counter() - started,
            model=calls.model,
            degraded=calls.result is None,
            reason=reason,
            error=calls.error,
        )

    async def plan(
        self,
        question: str,
        *,
        manifest: str,
        catalog: Catalog,
        window: DateWindow,
        now: date | datetime | None = None,
    ) -> PlanTurn:
        """Which types (and codes, and dates) to fetch; ``catalog`` (type -> code -> display) bounds the choice."""
        started = perf_counter()
        if not catalog:
            return PlanTurn(FetchPlan(), StepCost(reason="the record holds nothing to fetch"))
        messages = plan_messages(question, describe_window(window, now), manifest)

        def parse(text: str) -> tuple[FetchPlan | None, str]:
            found = parse_plan(text, catalog)
            return found.plan, found.reason

        calls = await self._step(
            messages,
            parse,
            lambda bad, reason: plan_repair_messages(messages, bad, reason, list(catalog)),
            self.plan_tokens,
            plan_json_schema(),
        )
        plan = calls.result if calls.result is not None else keyword_plan(question, catalog)
        return PlanTurn(plan, self._cost(calls, started))

    async def answer(
        self,
        question: str,
        facts: Sequence[Fact],
        *,
        window: DateWindow,
        now: date | datetime | None = None,
    ) -> AnswerTurn:
        """An answer citing ``[Type/id]`` of the given facts (newest first); unusable replies give the extractive
        answer. Citations are not checked here beyond "cites at least one fact": that is the caller's check."""
        started = perf_counter()
        if not facts:
            return AnswerTurn(_nothing_found(window), StepCost(reason="no facts: nothing to cite"))
        shown = select_facts(question, facts, self.max_facts)
        known = [fact.reference for fact in facts]
        messages = answer_messages(question, describe_window(window, now), shown)

        def parse(text: str) -> tuple[str | None, str]:
            found = parse_answer(text, known)
            return found.text, found.reason

        calls = await self._step(
            messages,
            parse,
            lambda bad, reason: answer_repair_messages(messages, bad, reason, shown),
            self.answer_tokens,
            answer_json_schema(),
        )
        text = calls.result if calls.result is not None else extractive_answer(question, facts)
        return AnswerTurn(text, self._cost(calls, started))


def _nothing_found(window: DateWindow) -> str:
    if window.start is not None or window.phrase is not None:
        start = window.start.isoformat() if window.start else "the start of the record"
        end = window.end.isoformat() if window.end else "now"
        return f"The record has no entries matching this question between {start} and {end}."
    return "The record has no entries matching this question."
