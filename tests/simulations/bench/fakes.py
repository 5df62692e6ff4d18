"""A role-aware fake chat model for runner tests: it reads which role it plays from the system prompt and answers
like a cooperative model of that role, optionally after a delay (so a run can be killed mid-way). ``ImagingFake``
plays the image reader: it answers only when it was sent an image block, and keeps what it was sent."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

DIAGNOSIS = "Acute myocardial infarction"


def _role(system: str) -> str:
    text = system.lower()
    if "core_disease" in text:
        return "rubric"
    if "diagnosis ready" in text:
        return "agentclinic_doctor"
    if '"action"' in text:
        return "doctor"
    if "yes or no" in text:
        return "judge"
    if "results" in text and "normal readings" in text:
        return "measurement"
    return "patient"


class RoleFake(BaseChatModel):
    """Answers by role: the doctor asks, orders a test, then diagnoses ``diagnosis``; the judge says ``verdict``.

    ``fail_roles`` raise instead of answering (a model that is down); ``delay_s`` sleeps before each answer.
    ``script`` replaces the doctor's (action, text) turns; ``texts_seen`` keeps every message's text per call.
    """

    diagnosis: str = DIAGNOSIS
    verdict: str = "Yes"
    delay_s: float = 0.0
    fail_roles: tuple[str, ...] = ()
    script: tuple[tuple[str, str], ...] = ()
    calls: list[str] = Field(default_factory=list)
    kwargs_seen: list[dict[str, Any]] = Field(default_factory=list)
    systems_seen: list[str] = Field(default_factory=list)
    texts_seen: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "role-fake"

    def _answer(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> ChatResult:
        role = _role(str(messages[0].content)) if messages else "patient"
        self.calls.append(role)
        self.kwargs_seen.append(dict(kwargs))
        self.systems_seen.append(str(messages[0].content) if messages else "")
        self.texts_seen.append("\n".join(_text_of(m) for m in messages))
        if role in self.fail_roles:
            from agents.backends import ModelUnavailableError

            raise ModelUnavailableError("http://fake/v1 kept failing: HTTP 503", url="http://fake/v1", status=503)
        turn = sum(isinstance(m, AIMessage) for m in messages) + 1
        if role == "doctor":
            script = list(self.script) or [("ask", "Where is the pain?"), ("test", "Troponin"),
                                           ("diagnose", self.diagnosis)]
            action, text = script[min(turn, len(script)) - 1]
            content = json.dumps({"action": action, "text": text,
                                  "differential": [{"diagnosis": self.diagnosis, "probability": 0.7}],
                                  "rationale": "scripted"})
        elif role == "agentclinic_doctor":
            history = str(messages[-1].content)
            if "REQUEST TEST: Troponin" in history:
                content = f"DIAGNOSIS READY: {self.diagnosis}"
            elif "Where does it hurt?" in history:
                content = "REQUEST TEST: Troponin"
            else:
                content = "Where does it hurt?"
        elif role == "judge":
            content = self.verdict
        elif role == "rubric":
            content = json.dumps({k: 1 for k in ("core_disease", "etiology", "site", "specificity", "completeness")})
        elif role == "measurement":
            content = "RESULTS: NORMAL READINGS"
        else:
            content = "It hurts in my chest."
        message = AIMessage(content=content, usage_metadata={"input_tokens": 50, "output_tokens": 5,
                                                             "total_tokens": 55},
                            response_metadata={"model": "fake:role", "wall_seconds": self.delay_s})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        time.sleep(self.delay_s)
        return self._answer(messages, kwargs)

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                         **kwargs: Any) -> ChatResult:
        await asyncio.sleep(self.delay_s)
        return self._answer(messages, kwargs)


def fake_models(**options: Any) -> dict[str, RoleFake]:
    model = RoleFake(calls=[], kwargs_seen=[], systems_seen=[], texts_seen=[], **options)
    return {"reasoning": model, "patient": model, "measurement": model, "judge": model}


def _text_of(message: BaseMessage) -> str:
    """A message's text, image blocks included as their kind only (never their data)."""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for block in message.content:
        if isinstance(block, dict):
            parts.append(str(block.get("text", "")) if block.get("type") == "text" else f"[{block.get('type')}]")
        else:
            parts.append(str(block))
    return "\n".join(parts)


def image_blocks(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """The image blocks of a call's messages (LangChain's standard ``image`` or an ``image_url`` part)."""
    return [block for message in messages if isinstance(message.content, list) for block in message.content
            if isinstance(block, dict) and block.get("type") in ("image", "image_url")]


FINDINGS = {
    "observations": ["Waxy yellow-brown plaques with violaceous borders on both shins"],
    "impression": "Atrophic yellow shin plaques with telangiectasia",
    "confidence": 0.8,
    "limitations": ["No scale bar", "Histology not visible"],
}


class ImagingFake(BaseChatModel):
    """The image reader's model: answers ``FINDINGS`` as JSON when the call holds an image block, and keeps the
    sha256 of every image it was sent (``digests``) and every call's text (``texts_seen``). A call without an image
    answers an apology, which the reader cannot use, so a missing image shows up as a failed read."""

    findings: dict[str, Any] = Field(default_factory=lambda: dict(FINDINGS))
    digests: list[str] = Field(default_factory=list)
    texts_seen: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "imaging-fake"

    def _answer(self, messages: list[BaseMessage]) -> ChatResult:
        self.texts_seen.append("\n".join(_text_of(m) for m in messages))
        blocks = image_blocks(messages)
        for block in blocks:
            data = block.get("base64") or block.get("data") or str(block.get("image_url", {}).get("url", "")
                                                                   ).partition(",")[2]
            self.digests.append(hashlib.sha256(base64.b64decode(data)).hexdigest())
        content = json.dumps(self.findings) if blocks else "I was not sent an image."
        message = AIMessage(content=content, usage_metadata={"input_tokens": 300, "output_tokens": 40,
                                                             "total_tokens": 340},
                            response_metadata={"model": "fake:imaging", "image_tokens": 256 * len(blocks)})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return self._answer(messages)

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                         **kwargs: Any) -> ChatResult:
        return self._answer(messages)


SPECS = {"reasoning": "openai:fake@http://fake/v1", "patient": "openai:fake@http://fake/v1",
         "measurement": "openai:fake@http://fake/v1", "judge": "openai:fake@http://fake/v1"}
