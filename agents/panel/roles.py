"""The panel's five roles, each one model call with its own prompt and structured output.

``Panel.run_role`` never raises because of the model: a reply that cannot be used, or a model error, comes back as a
``RoleResult`` with ``ok=False`` and the reason, and the consensus goes on without that role. The hypothesis role
runs alone before the others and everything depends on it, so an unusable reply gets one repair call; the four
parallel roles get none (a second round trip would double the parallel step's wall time for one role's benefit).
``asyncio.CancelledError`` is not caught: cancelling must still cancel.

Every system prompt starts with the line ``Role: <role>``; test doubles and the benchmark's model server recognise
the role by it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from time import perf_counter
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from agents.json_objects import close_truncated, load_object, scan_objects
from agents.model_calls import GenerationCall, ModelReply, read_reply
from agents.panel.brief import PanelBrief, render_brief
from agents.panel.outputs import ROLE_OUTPUTS, ROLES, HypothesisView, RoleName, role_json_schema
from agents.prompt_files import read_prompt, render

__all__ = ["PARALLEL_ROLES", "ROLES", "Panel", "RoleName", "RoleResult", "parse_role_reply", "role_messages"]

logger = logging.getLogger(__name__)

PARALLEL_ROLES: tuple[RoleName, ...] = ("test_chooser", "challenger", "stewardship", "checklist")

# Replies longer than this are runaway generations: only their start is worth reading.
_MAX_SCAN_CHARS = 20_000
_EXAMPLE_HEADING = "Example reply:\n"


@dataclass(frozen=True)
class RoleResult:
    """One role's output for one panel member, or why there is none, with what the call cost."""

    role: RoleName
    member: int
    ok: bool
    output: dict[str, Any] | None  # the output model dumped as JSON data; None when not ok
    error: str | None  # "model error: ...", "unparseable: ...", "invalid: ..."
    reply: str  # the raw reply (thinking removed), kept for the transcript
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoleResult:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})


def system_prompt(role: RoleName) -> str:
    """The role's prompt file; its first line is ``Role: <role>``."""
    return read_prompt("agents.panel", role)


def role_messages(role: RoleName, brief: PanelBrief) -> list[BaseMessage]:
    """[role prompt, brief]: the brief text is identical for every role of a member, only the system prompt differs."""
    return [SystemMessage(system_prompt(role)), HumanMessage(render_brief(brief))]


def _candidates(text: str) -> list[dict[str, Any]]:
    """The JSON objects in ``text``, last first (a model that echoes the example answers after it); a wrapper such
    as ``{"hypothesis": {...}}`` also offers its inner object."""
    found: list[dict[str, Any]] = []
    for start, end, complete in scan_objects(text[:_MAX_SCAN_CHARS]):
        snippet = text[start:end]
        loaded = load_object(snippet) if complete else close_truncated(snippet)
        if isinstance(loaded, dict):
            found.append(loaded)
            found += [v for v in loaded.values() if isinstance(v, dict) and len(loaded) == 1]
    return found[::-1]


def parse_role_reply(role: RoleName, text: str) -> tuple[BaseModel | None, str]:
    """(output, "") from the first usable JSON object, or (None, reason). Pure; never raises."""
    model = ROLE_OUTPUTS[role]
    objects = _candidates(text)
    if not objects:
        return None, "unparseable: " + ("empty reply" if not text.strip() else "no JSON object")
    problem = ""
    for obj in objects:
        try:
            output = model.model_validate(obj)
        except ValidationError as exc:
            first = exc.errors()[0]
            problem = problem or f"invalid: {'.'.join(str(p) for p in first['loc']) or 'object'}: {first['msg']}"
            continue
        if output.model_fields_set:  # {} or an object about something else validates to all defaults
            return output, ""
        problem = problem or f"invalid: none of the keys of the {role} reply"
    return None, problem


def _known_ids(view: HypothesisView, brief: PanelBrief) -> HypothesisView:
    """Provenance must point at findings that exist: ids the brief does not hold are dropped."""
    ids = brief.finding_ids
    differential = [d.model_copy(update={"evidence": [i for i in d.evidence if i in ids]}) for d in view.differential]
    return view.model_copy(update={"differential": differential, "moved_by": [i for i in view.moved_by if i in ids]})


def _repair_messages(role: RoleName, messages: list[BaseMessage], bad: str, reason: str) -> list[BaseMessage]:
    example = system_prompt(role).rpartition(_EXAMPLE_HEADING)[2]
    text = render(read_prompt("agents.panel", "repair"), reason=reason, example=example)
    return [*messages, AIMessage(bad), HumanMessage(text)]


class Panel:
    """The panel's roles, driven by ``model`` (a langchain-core chat model)."""

    def __init__(self, model: BaseChatModel, *, max_new_tokens: int = 384, schema_hint: bool = True) -> None:
        """``max_new_tokens`` caps each reply; ``schema_hint`` passes the role's JSON Schema with each call (turn it
        off for a backend that pastes the schema into the prompt, which small models echo)."""
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.schema_hint = schema_hint
        self._caller = GenerationCall(model)

    async def _call(self, role: RoleName, messages: list[BaseMessage]) -> ModelReply:
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens}
        if self.schema_hint:
            kwargs["json_schema"] = role_json_schema(role)
        return read_reply(await self._caller.ainvoke(messages, **kwargs))

    async def run_role(self, role: RoleName, brief: PanelBrief) -> RoleResult:
        """One role's output for ``brief``; never raises for the model."""
        if role not in ROLES:
            raise ValueError(f"unknown panel role {role!r}; expected one of {', '.join(ROLES)}")
        started = perf_counter()
        messages = role_messages(role, brief)
        replies: list[ModelReply] = []
        calls = 0
        output: BaseModel | None = None
        error: str | None = None
        try:
            calls += 1
            replies.append(await self._call(role, messages))
            output, error = parse_role_reply(role, replies[-1].text)
            if output is None and role == "hypothesis":
                calls += 1
                replies.append(await self._call(role, _repair_messages(role, messages, replies[-1].text, error)))
                output, second = parse_role_reply(role, replies[-1].text)
                error = None if output is not None else f"{second} after repair (first: {error})"
        except Exception as exc:  # noqa: BLE001 - any model failure fails this role only; recorded, never hidden
            output, error = None, f"model error: {type(exc).__name__}: {exc}"
            logger.warning("panel role %s (member %d) failed: %s", role, brief.member, error)
        if isinstance(output, HypothesisView):
            output = _known_ids(output, brief)
        return RoleResult(
            role=role,
            member=brief.member,
            ok=output is not None,
            output=output.model_dump(mode="json") if output is not None else None,
            error=None if output is not None else error,
            reply=replies[-1].text if replies else "",
            model=next((r.model for r in reversed(replies) if r.model), None),
            input_tokens=sum(r.input_tokens for r in replies),
            output_tokens=sum(r.output_tokens for r in replies),
            seconds=perf_counter() - started,
            calls=calls,
        )

    async def run_members(self, role: RoleName, briefs: Sequence[PanelBrief]) -> list[RoleResult]:
        """``role`` for every brief (one per ensemble member), concurrently, in the briefs' order."""
        return list(await asyncio.gather(*(self.run_role(role, brief) for brief in briefs)))

    async def run_roles(self, roles: Sequence[RoleName], briefs: Sequence[PanelBrief]) -> list[RoleResult]:
        """Every role in ``roles`` for every brief, all concurrently: the panel's parallel step in one await.
        Results are ordered by role, then member."""
        return list(await asyncio.gather(*(self.run_role(role, brief) for role in roles for brief in briefs)))
