"""The doctor role: one structured decision per turn from any langchain-core chat model.

``Doctor.decide`` never raises because of the model. A reply that cannot be parsed gets one repair call; a second
failure, or a model error, degrades to a safe question; the last turn always ends in a diagnosis. What happened is
recorded on the returned ``DoctorTurn`` (``degraded``, ``forced``, ``error``, ``parse_reason``) so transcripts and
metrics can count it. ``asyncio.CancelledError`` is not caught: cancelling a consultation must still cancel it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agents.doctor.decision import DoctorDecision, decision_json_schema
from agents.doctor.fallbacks import PriorDifferential, forced_diagnosis, safe_question
from agents.doctor.messages import Exchange, build_messages, repair_messages
from agents.doctor.parsing import ParseResult, parse_decision, split_thinking

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DoctorTurn:
    """The outcome of one doctor turn with what it cost.

    ``reply`` is what to store in the dialogue and replay as the assistant message next turn: the model's reply
    (thinking removed), or for a degraded turn the JSON of the decision made in its place.
    """

    decision: DoctorDecision
    reply: str
    thinking: str | None
    input_tokens: int
    output_tokens: int
    seconds: float
    calls: int
    model: str | None
    degraded: bool
    forced: bool
    error: str | None
    parse_reason: str


@dataclass(frozen=True)
class _Reply:
    text: str
    thinking: str | None
    input_tokens: int
    output_tokens: int
    model: str | None


def _read_reply(message: Any) -> _Reply:
    """Text and metadata of a model answer; fakes and foreign models lack the metadata, so missing means 0/None."""
    if isinstance(message, BaseMessage):
        content = str(message.text)
        metadata = message.response_metadata or {}
        usage = getattr(message, "usage_metadata", None) or {}
    else:
        content, metadata, usage = str(message), {}, {}
    # Backends strip MedGemma's thinking; strip again in case this model did not.
    text, leftover = split_thinking(content)
    thoughts = [t for t in (metadata.get("thinking"), leftover) if isinstance(t, str) and t.strip()]
    model = metadata.get("model") or metadata.get("model_name")
    return _Reply(
        text=text,
        thinking="\n\n".join(thoughts) or None,
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        model=str(model) if model else None,
    )


def _rejects_generation_kwargs(exc: TypeError) -> bool:
    message = str(exc)
    return "unexpected keyword argument" in message and ("max_new_tokens" in message or "json_schema" in message)


class Doctor:
    """Interviews, orders tests and diagnoses, driven by ``model`` (a langchain-core chat model)."""

    def __init__(self, model: BaseChatModel, *, max_new_tokens: int = 384) -> None:
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        self.model = model
        self.max_new_tokens = max_new_tokens
        # Set once a model has refused our generation keyword arguments, so later calls skip the failing attempt.
        self._plain_calls = False

    async def _call(self, messages: list[BaseMessage]) -> _Reply:
        if self._plain_calls:
            return _read_reply(await self.model.ainvoke(messages))
        try:
            answer = await self.model.ainvoke(
                messages, max_new_tokens=self.max_new_tokens, json_schema=decision_json_schema()
            )
        except TypeError as exc:
            if not _rejects_generation_kwargs(exc):
                raise
            logger.info("model %s rejects max_new_tokens/json_schema; calling without them", type(self.model))
            self._plain_calls = True
            answer = await self.model.ainvoke(messages)
        return _read_reply(answer)

    async def decide(
        self,
        objective: str,
        exchanges: Sequence[Exchange],
        turn: int,
        max_turns: int,
        *,
        prior_differential: PriorDifferential | None = None,
    ) -> DoctorTurn:
        """Decide turn ``turn`` (1-based) of at most ``max_turns``, given the dialogue so far.

        ``prior_differential`` is the last differential known from earlier turns: it fills a degraded turn and
        supplies the forced diagnosis when the final turn's reply carries none.
        """
        if turn < 1 or max_turns < 1:
            raise ValueError(f"turn ({turn}) and max_turns ({max_turns}) must be at least 1")
        started = perf_counter()
        messages = build_messages(objective, exchanges, turn, max_turns)
        replies: list[_Reply] = []
        result = ParseResult(None, "no reply")
        reply_text = ""
        error: str | None = None
        try:
            replies.append(await self._call(messages))
            result = parse_decision(replies[-1].text)
            reply_text = replies[-1].text
            if not result.ok:
                first_reason = result.reason
                replies.append(await self._call(repair_messages(messages, reply_text, first_reason)))
                result = parse_decision(replies[-1].text)
                result = ParseResult(
                    result.decision, f"{result.reason} after repair (first reply: {first_reason})", result.method
                )
                if result.ok:
                    reply_text = replies[-1].text
        except Exception as exc:  # noqa: BLE001 - any model failure degrades the turn; it is recorded, not hidden
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("doctor model call failed on turn %d: %s", turn, error)
            result = ParseResult(None, "model error")

        degraded = result.decision is None
        decision = result.decision
        forced = False
        if turn >= max_turns and (decision is None or decision.action != "diagnose"):
            decision, forced = forced_diagnosis(decision, prior_differential), True
        elif decision is None:
            decision = safe_question(prior_differential)
        if degraded:
            # The synthesised decision is what the dialogue records, in the format the model is asked to use.
            reply_text = decision.model_dump_json()

        thoughts = [r.thinking for r in replies if r.thinking]
        return DoctorTurn(
            decision=decision,
            reply=reply_text,
            thinking="\n\n".join(thoughts) or None,
            input_tokens=sum(r.input_tokens for r in replies),
            output_tokens=sum(r.output_tokens for r in replies),
            seconds=perf_counter() - started,
            calls=max(len(replies), 1 if error else 0),
            model=next((r.model for r in reversed(replies) if r.model), None),
            degraded=degraded,
            forced=forced,
            error=error,
            parse_reason=result.reason,
        )
