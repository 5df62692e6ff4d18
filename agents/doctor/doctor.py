"""The doctor role: one structured decision per turn from any langchain-core chat model.

``Doctor.decide`` never raises because of the model. Per turn:

1. one call with the append-only message list (``messages``), parsed tolerantly (``parsing``) and reviewed
   against the dialogue (``review``: repeats, echoes, no diagnosis on the final turn);
2. if unusable, one repair call (the bad reply and the reason appended; none of it enters the dialogue), skipped
   once the model has needed the fallback ``NO_REPAIR_AFTER_FALLBACKS`` times in this consultation; on the final
   turn, when no diagnosis can be derived, the repair is a short fresh context asking only for the diagnosis;
3. if still unusable, or on a model error, the safe question (``fallbacks``);
4. on the last turn the result is always a diagnosis, forced from the differential if the model gave none.

What happened is recorded on the returned ``DoctorTurn`` (``degraded``, ``forced``, ``error``, ``parse_reason``)
so transcripts and metrics can count it. ``asyncio.CancelledError`` is not caught: cancelling must still cancel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from time import perf_counter
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agents.doctor.decision import DoctorDecision, decision_json_schema
from agents.doctor.fallbacks import PriorDifferential, count_fallbacks, forced_diagnosis, safe_question
from agents.doctor.messages import Exchange, ImageBrief, build_messages, final_repair_messages, repair_messages
from agents.doctor.parsing import ParseResult, parse_decision, split_thinking
from agents.doctor.review import review_problem
from agents.model_calls import GenerationCall, ModelReply, read_reply

logger = logging.getLogger(__name__)

# Fallback turns already in the dialogue after which an unusable reply gets no repair call.
NO_REPAIR_AFTER_FALLBACKS = 2


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


def read_doctor_reply(message: Any) -> ModelReply:
    """A model answer read with the doctor's thinking splitter (which also knows ``<think>`` blocks)."""
    return read_reply(message, split=split_thinking)


@dataclass
class _Attempts:
    """What the model calls of one turn produced (at most two: the turn and its repair)."""

    replies: list[ModelReply] = field(default_factory=list)
    calls: int = 0
    accepted: tuple[DoctorDecision, str] | None = None  # a decision fit to use, with the reply that gave it
    parsed: tuple[DoctorDecision, str] | None = None  # the latest decision that parsed, fit or not
    reasons: list[str] = field(default_factory=list)  # one per call: the parse reason or why it was not used
    error: str | None = None

    def judge(self, result: ParseResult, text: str, review: Callable[[DoctorDecision], str | None]) -> bool:
        """Record one parsed reply; True when its decision is fit to use."""
        if result.decision is None:
            self.reasons.append(result.reason)
            return False
        self.parsed = (result.decision, text)
        problem = review(result.decision)
        if problem is not None:
            self.reasons.append(f"unused: {problem}")
            return False
        self.accepted = self.parsed
        self.reasons.append(result.reason)
        return True


def _repair_plan(
    objective: str,
    exchanges: Sequence[Exchange],
    messages: list[BaseMessage],
    max_turns: int,
    *,
    final: bool,
    system_note: str | None = None,
    images: ImageBrief | None = None,
) -> Callable[[str, str], list[BaseMessage]] | None:
    """How this turn repairs an unusable reply: a function (bad reply, reason) -> messages, or None for no repair."""
    if final:
        # The last chance of a real diagnosis: always tried, in a short context that small models can answer.
        return lambda _bad, _reason: final_repair_messages(objective, exchanges, max_turns, system_note=system_note,
                                                           images=images)
    if count_fallbacks([ex.reply for ex in exchanges]) >= NO_REPAIR_AFTER_FALLBACKS:
        # A model that has needed the fallback this often in this consultation rarely recovers on a repair (small
        # models copy their last reply): save the call. Read from the dialogue, so a resumed run decides the same.
        return None
    # The unusable reply goes back with the reason; none of the repair enters the dialogue.
    return partial(repair_messages, messages)


class Doctor:
    """Interviews, orders tests and diagnoses, driven by ``model`` (a langchain-core chat model)."""

    def __init__(
        self,
        model: BaseChatModel,
        *,
        max_new_tokens: int = 384,
        schema_hint: bool = True,
        system_note: str | None = None,
    ) -> None:
        """``max_new_tokens`` caps each call's reply. ``schema_hint`` passes the decision's JSON Schema with each
        call (servers with constrained decoding enforce it); turn it off for a local backend that pastes the
        schema into the prompt, which small models echo instead of answering (the system prompt shows the
        format already). ``system_note`` is appended to the rules on every call (a benchmark's bias condition).
        """
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.schema_hint = schema_hint
        self.system_note = system_note
        self._caller = GenerationCall(model)

    async def _call(
        self, messages: list[BaseMessage], *, with_record: bool = False, with_image: bool = False
    ) -> ModelReply:
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens}
        if self.schema_hint:
            kwargs["json_schema"] = decision_json_schema(with_record=with_record, with_image=with_image)
        return read_doctor_reply(await self._caller.ainvoke(messages, **kwargs))

    async def _query(
        self,
        messages: list[BaseMessage],
        judge: Callable[[DoctorDecision], str | None],
        repair: Callable[[str, str], list[BaseMessage]] | None,
        *,
        with_record: bool = False,
        with_image: bool = False,
    ) -> _Attempts:
        """Call the model, and once more with ``repair(bad_reply, reason)``'s messages if the reply is unusable
        (no second call when ``repair`` is None); never raises for the model."""
        attempts = _Attempts()

        async def attempt(call_messages: list[BaseMessage]) -> bool:
            attempts.calls += 1
            reply = await self._call(call_messages, with_record=with_record, with_image=with_image)
            attempts.replies.append(reply)
            return attempts.judge(parse_decision(reply.text), reply.text, judge)

        try:
            if not await attempt(messages) and repair is not None:
                await attempt(repair(attempts.replies[-1].text, attempts.reasons[-1]))
        except Exception as exc:  # noqa: BLE001 - any model failure degrades the turn; recorded, never hidden
            attempts.error = f"{type(exc).__name__}: {exc}"
            attempts.reasons.append("model error")
            logger.warning("doctor model call failed: %s", attempts.error)
        return attempts

    async def decide(
        self,
        objective: str,
        exchanges: Sequence[Exchange],
        turn: int,
        max_turns: int,
        *,
        prior_differential: PriorDifferential | None = None,
        record: str | None = None,
        images: ImageBrief | None = None,
    ) -> DoctorTurn:
        """Decide turn ``turn`` (1-based) of at most ``max_turns``, given the dialogue so far.

        ``prior_differential`` is the last differential known from earlier turns: it fills a degraded turn and
        supplies the forced diagnosis when the final turn's reply carries none. ``record`` is the patient's
        health-record summary when one was loaded at intake; only then may the doctor choose ``record``.
        ``images`` is what the doctor is told about the patient's images; only with ``images.can_request`` may it
        choose ``image``.
        """
        if turn < 1 or max_turns < 1:
            raise ValueError(f"turn ({turn}) and max_turns ({max_turns}) must be at least 1")
        started = perf_counter()
        final = turn >= max_turns
        can_request = images is not None and images.can_request
        messages = build_messages(objective, exchanges, turn, max_turns, record=record, system_note=self.system_note,
                                  images=images)
        attempts = await self._query(
            messages,
            partial(
                review_problem,
                objective=objective,
                exchanges=exchanges,
                final=final,
                prior_differential=prior_differential,
                record_available=record is not None,
                image_offered=can_request,
            ),
            _repair_plan(objective, exchanges, messages, max_turns, final=final, system_note=self.system_note,
                         images=images),
            with_record=record is not None,
            with_image=can_request,
        )

        # On the final turn a parsed reply that failed review still feeds the forced diagnosis.
        chosen = attempts.accepted or (attempts.parsed if final else None)
        degraded = chosen is None
        if chosen is not None:
            decision, reply_text = chosen
        else:
            decision = safe_question(prior_differential, [ex.reply for ex in exchanges])
        # A final reply that failed review is never taken at its word: only its differential may be used.
        unreviewed = chosen is not None and chosen is not attempts.accepted
        forced = final and (decision.action != "diagnose" or unreviewed)
        if forced:
            decision = forced_diagnosis(None if degraded else decision, prior_differential)
        if degraded:
            # The synthesised decision is what the dialogue records, in the format the model is asked to use.
            reply_text = decision.model_dump_json()

        replies = attempts.replies
        reasons = attempts.reasons
        return DoctorTurn(
            decision=decision,
            reply=reply_text,
            thinking="\n\n".join(r.thinking for r in replies if r.thinking) or None,
            input_tokens=sum(r.input_tokens for r in replies),
            output_tokens=sum(r.output_tokens for r in replies),
            seconds=perf_counter() - started,
            calls=attempts.calls,
            model=next((r.model for r in reversed(replies) if r.model), None),
            degraded=degraded,
            forced=forced,
            error=attempts.error,
            parse_reason=reasons[-1] if len(reasons) == 1 else f"{reasons[-1]} after repair (first: {reasons[0]})",
        )
