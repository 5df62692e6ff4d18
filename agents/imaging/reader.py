"""The image reader: one image in, structured findings out, from any langchain-core chat model (MedGemma 4B).

``ImageReader.read`` never raises because of the model. Per read:

1. one single-turn call: the modality's system prompt, then a human message holding the image block and the text
   (the doctor's question fenced as a request), with ``max_new_tokens`` and the findings' JSON Schema;
2. if the reply is unusable, or prose rather than JSON, one repair call: the bad reply and the reason appended as
   text (the image stays in the first human message and is not sent again);
3. the first JSON read wins; failing that a prose reply is kept as the impression (confidence 0, parse reason
   ``prose``); failing that the read is degraded and its text says that it failed and why.

The reader sees the image, its modality and the doctor's question, never the case's diagnosis. What happened is
on the returned ``ImageRead`` (``degraded``, ``error``, ``parse_reason``, calls and tokens).
``asyncio.CancelledError`` is not caught: cancelling must still cancel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from time import perf_counter

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agents.imaging.findings import FindingsParse, ImageFindings, findings_json_schema, parse_findings, render_findings
from agents.imaging.modality import Modality, check_modality
from agents.imaging.prompts import read_messages, repair_messages
from agents.model_calls import GenerationCall, ModelReply, read_reply

__all__ = ["ImageInput", "ImageRead", "ImageReader"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageInput:
    """The bytes of one image with their media type ("image/png") and the image's name in its case."""

    data: bytes
    media_type: str
    image_id: str = "image-1"


@dataclass(frozen=True)
class ImageRead:
    """The outcome of one read with what it cost.

    ``text`` is the paragraph for the doctor: the rendered findings, a free-text read, or why the read failed.
    ``reply`` is the reply the findings came from (thinking removed), or the last reply when none was usable.
    ``degraded`` means no findings; ``error`` is a model error ("Type: message"), set even when an earlier reply
    still gave a read. ``parse_reason`` says how the reply was read ("parsed JSON object", "prose", ...).
    """

    image_id: str
    modality: Modality
    findings: ImageFindings | None
    text: str
    reply: str
    thinking: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    seconds: float
    calls: int
    degraded: bool
    error: str | None
    parse_reason: str = ""


@dataclass
class _Attempts:
    """What the calls of one read produced (at most two: the read and its repair)."""

    replies: list[ModelReply] = field(default_factory=list)
    parses: list[FindingsParse] = field(default_factory=list)
    calls: int = 0
    error: str | None = None

    def chosen(self) -> tuple[FindingsParse, ModelReply] | None:
        """The first JSON read, else the first prose read, else None."""
        pairs = list(zip(self.parses, self.replies, strict=False))
        for wanted in (("json", "json_salvage"), ("prose",)):
            for parsed, reply in pairs:
                if parsed.method in wanted:
                    return parsed, reply
        return None

    def reason(self) -> str:
        reasons = [p.reason for p in self.parses] + (["model error"] if self.error else [])
        if not reasons:
            return "no call made"
        return reasons[-1] if len(reasons) == 1 else f"{reasons[-1]} after repair (first: {reasons[0]})"


def _check_image(image: ImageInput) -> None:
    if not isinstance(image.data, (bytes, bytearray)) or not image.data:
        raise ValueError(f"image {image.image_id!r} has no bytes to read")
    if not image.media_type.startswith("image/"):
        raise ValueError(f"image {image.image_id!r} has media type {image.media_type!r}, not image/*")


class ImageReader:
    """Reads one image at a time into ``ImageFindings``, driven by ``model`` (an image-capable chat model)."""

    def __init__(self, model: BaseChatModel, *, max_new_tokens: int = 512) -> None:
        """``max_new_tokens`` caps each call's reply; a read is a few hundred tokens of JSON."""
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        self.model = model
        self.max_new_tokens = max_new_tokens
        self._caller = GenerationCall(model)

    async def _call(self, messages: list[BaseMessage]) -> ModelReply:
        kwargs = {"max_new_tokens": self.max_new_tokens, "json_schema": findings_json_schema()}
        return read_reply(await self._caller.ainvoke(messages, **kwargs))

    async def _query(self, messages: list[BaseMessage]) -> _Attempts:
        """The read, and one repair call unless its reply was JSON; model errors are recorded, never raised."""
        attempts = _Attempts()

        async def attempt(call_messages: list[BaseMessage]) -> FindingsParse:
            attempts.calls += 1  # counted when made, so a call that fails still counts
            reply = await self._call(call_messages)
            parsed = parse_findings(reply.text)
            attempts.replies.append(reply)
            attempts.parses.append(parsed)
            return parsed

        try:
            first = await attempt(messages)
            if first.method not in ("json", "json_salvage"):
                why = "free text instead of the JSON object" if first.method == "prose" else first.reason
                await attempt(repair_messages(messages, attempts.replies[-1].text, why))
        except Exception as exc:  # noqa: BLE001 - any model failure degrades the read; recorded, never hidden
            attempts.error = f"{type(exc).__name__}: {exc}"
            logger.warning("image reader model call failed: %s", attempts.error)
        return attempts

    async def read(
        self, image: ImageInput, *, modality: Modality = "clinical_photo", question: str | None = None
    ) -> ImageRead:
        """Read ``image`` with the prompt for ``modality``; ``question`` is what the doctor wants looked at.

        Raises ValueError only for a caller's mistake (unknown modality, no bytes, a non-image media type).
        """
        check_modality(modality)
        _check_image(image)
        started = perf_counter()
        attempts = await self._query(read_messages(bytes(image.data), image.media_type, modality, question))
        chosen = attempts.chosen()
        replies = attempts.replies
        if chosen is not None:
            parsed, used = chosen
            findings = parsed.findings
            text = _read_text(parsed)
        else:
            findings, used = None, (replies[-1] if replies else None)
            text = _failed_text(attempts)
        return ImageRead(
            image_id=image.image_id,
            modality=modality,
            findings=findings,
            text=text,
            reply=used.text if used is not None else "",
            thinking="\n\n".join(r.thinking for r in replies if r.thinking) or None,
            model=next((r.model for r in reversed(replies) if r.model), None),
            input_tokens=sum(r.input_tokens for r in replies),
            output_tokens=sum(r.output_tokens for r in replies),
            seconds=perf_counter() - started,
            calls=attempts.calls,
            degraded=findings is None,
            error=attempts.error,
            parse_reason=attempts.reason(),
        )


def _read_text(parsed: FindingsParse) -> str:
    assert parsed.findings is not None  # chosen() only returns parses that gave findings
    if parsed.method == "prose":
        # Confidence 0 here means "not given": say so rather than print a number the model never wrote.
        return f"Free-text read (no structured findings, no confidence given): {parsed.findings.impression}"
    return render_findings(parsed.findings)


def _failed_text(attempts: _Attempts) -> str:
    if attempts.error is not None:
        # The doctor needs to know that the read failed, not the whole traceback text: the error field keeps that.
        error = attempts.error if len(attempts.error) <= 300 else attempts.error[:297] + "..."
        return f"The image read failed: the image model could not be called ({error})."
    return f"The image read failed: the image model's reply could not be used ({attempts.reason()})."
