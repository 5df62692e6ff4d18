"""A role-aware fake chat model for the panel: it reads its role from the system prompt's first line ("Role: x")
and answers from a per-role script, by default with a valid reply for that role. Used by the panel's own tests and
by the graph tests, so it stays general: any role name, any number of calls, optional delay and failures."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


def hypothesis_json(
    differential: list[tuple[str, float]] | None = None,
    *,
    next_step: str = "test",
    question: str = "",
    moved_by: list[str] | None = None,
    evidence: list[str] | None = None,
) -> str:
    """A hypothesis reply; ``evidence`` is given to every diagnosis."""
    items = differential if differential is not None else [("Pneumonia", 0.6), ("Pulmonary embolism", 0.3)]
    return json.dumps({
        "differential": [{"diagnosis": d, "probability": p, "evidence": evidence or []} for d, p in items],
        "moved_by": moved_by or [],
        "next_step": next_step,
        "question": question,
    })


def choice_json(*names: str, record_question: str = "", image_request: str = "") -> str:
    tests = [{"name": n, "reason": "separates the leading diagnoses"} for n in (names or ("Chest X-ray",))]
    return json.dumps({"tests": tests, "record_question": record_question, "image_request": image_request})


def challenge_json(*, leader_holds: bool = True, falsifying_test: str = "", concern: str = "",
                   alternative: str = "") -> str:
    return json.dumps({"concern": concern, "alternative": alternative, "falsifying_test": falsifying_test,
                       "leader_holds": leader_holds})


def stewardship_json(*vetoes: str, substitutions: dict[str, str] | None = None, note: str = "") -> str:
    subs = [{"instead_of": k, "use": v} for k, v in (substitutions or {}).items()]
    return json.dumps({"vetoes": list(vetoes), "substitutions": subs, "note": note})


def checklist_json(*problems: str, ready: bool = False) -> str:
    return json.dumps({"problems": list(problems), "ready_to_diagnose": ready})


DEFAULT_REPLIES: dict[str, str] = {
    "hypothesis": hypothesis_json(),
    "test_chooser": choice_json("Chest X-ray", "Complete blood count"),
    "challenger": challenge_json(),
    "stewardship": stewardship_json(),
    "checklist": checklist_json(),
    # Any other system prompt (the single doctor, for instance): a valid doctor decision.
    "*": json.dumps({"action": "ask", "text": "Where does it hurt?",
                     "differential": [{"diagnosis": "Pneumonia", "probability": 0.6}], "rationale": "default"}),
}


def role_of(messages: list[BaseMessage]) -> str:
    """The role named by the system prompt's first line ("Role: test_chooser"), or "*" when there is none."""
    first = str(messages[0].content).strip().splitlines()[0] if messages and messages[0].content else ""
    return first.removeprefix("Role:").strip() if first.startswith("Role:") else "*"


class RoleScriptedModel(BaseChatModel):
    """Answers by role. ``replies[role]`` is a string (always), a list (one per call, the last repeated) or a
    function of the messages; roles without a script get ``DEFAULT_REPLIES``. Roles in ``fail`` raise
    ``RuntimeError``. ``calls`` records (role, start, end) with ``time.perf_counter`` times, ``kwargs_seen`` each
    call's generation arguments, ``messages_seen`` each call's messages."""

    replies: dict[str, Any] = Field(default_factory=dict)
    delay: float = 0.0
    fail: set[str] = Field(default_factory=set)
    calls: list[tuple[str, float, float]] = Field(default_factory=list)
    kwargs_seen: list[dict[str, Any]] = Field(default_factory=list)
    messages_seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "role-scripted-fake"

    def _reply(self, role: str, messages: list[BaseMessage]) -> str:
        script = self.replies.get(role, DEFAULT_REPLIES.get(role, DEFAULT_REPLIES["*"]))
        if callable(script):
            return script(messages)
        if isinstance(script, list):
            done = sum(1 for called, _, _ in self.calls if called == role)
            return script[min(done, len(script) - 1)]
        return str(script)

    def _answer(self, messages: list[BaseMessage], kwargs: dict[str, Any], start: float) -> ChatResult:
        role = role_of(messages)
        content = None if role in self.fail else self._reply(role, messages)
        self.calls.append((role, start, time.perf_counter()))
        self.kwargs_seen.append(dict(kwargs))
        self.messages_seen.append(list(messages))
        if content is None:
            raise RuntimeError(f"fake model down for role {role}")
        message = AIMessage(content, response_metadata={"model": "fake:panel"},
                            usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        start = time.perf_counter()
        time.sleep(self.delay)
        return self._answer(messages, kwargs, start)

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                         **kwargs: Any) -> ChatResult:
        start = time.perf_counter()
        await asyncio.sleep(self.delay)
        return self._answer(messages, kwargs, start)
