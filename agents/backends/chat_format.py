"""Turn LangChain messages into the prompt a local model's chat template expects.

Gemma's template has no system turn and insists on strict user/model alternation, and Google's advice is to
fold the system text into the first user turn. The backend does that itself (rather than trusting each model's
template) for every Gemma-family model and for any template that raises on a system role or on two turns of
the same role. All functions here are pure except `detect_quirks`, which renders tiny probe conversations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage

from .errors import UnsupportedInputError

__all__ = [
    "RoleMessage",
    "TemplateQuirks",
    "detect_quirks",
    "ensure_user_first",
    "fold_system",
    "format_prompt",
    "merge_consecutive",
    "message_role",
    "message_text",
    "to_role_messages",
]

RoleMessage = dict[str, str]

_ROLE_BY_TYPE = {"system": "system", "human": "user", "ai": "assistant", "tool": "user", "function": "user"}
_ROLE_ALIASES = {"model": "assistant", "developer": "system", "human": "user", "ai": "assistant"}


def message_text(message: BaseMessage) -> str:
    """The text of a message; content lists may hold text blocks only (local backends are text-only)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            raise UnsupportedInputError(
                f"a {message.type} message holds a {kind!r} block; local text models accept text only"
            )
    return "\n".join(parts)


def message_role(message: BaseMessage) -> str:
    """The chat-template role of a LangChain message: system, user or assistant (tool output counts as user)."""
    role = getattr(message, "role", None) if message.type == "chat" else _ROLE_BY_TYPE.get(message.type)
    role = _ROLE_ALIASES.get(str(role), role) if role else "user"
    return role if role in {"system", "user", "assistant"} else "user"


def to_role_messages(messages: Sequence[BaseMessage]) -> list[RoleMessage]:
    """Map LangChain messages to ``{"role", "content"}`` dicts with roles system/user/assistant."""
    out: list[RoleMessage] = []
    for message in messages:
        role = message_role(message)
        text = message_text(message)
        if message.type == "tool":
            # MedGemma has no tool role; tool output goes back as a user turn the model can read.
            text = f"Tool result:\n{text}"
        out.append({"role": role, "content": text})
    return out


def fold_system(messages: Sequence[RoleMessage]) -> list[RoleMessage]:
    """Remove system turns and prepend their text to the first user turn (creating one if none exists)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system" and m["content"].strip())
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if not system:
        return rest
    for message in rest:
        if message["role"] == "user":
            message["content"] = f"{system}\n\n{message['content']}"
            return rest
    # No user turn at all (e.g. the model opens the conversation): the instructions become the first user turn.
    return [{"role": "user", "content": system}, *rest]


def merge_consecutive(messages: Sequence[RoleMessage]) -> list[RoleMessage]:
    """Join back-to-back turns of the same role, for templates that require strict alternation."""
    out: list[RoleMessage] = []
    for message in messages:
        if out and out[-1]["role"] == message["role"]:
            out[-1] = {"role": message["role"], "content": f"{out[-1]['content']}\n\n{message['content']}"}
        else:
            out.append(dict(message))
    return out


def ensure_user_first(messages: Sequence[RoleMessage]) -> list[RoleMessage]:
    """Alternating templates want a user turn first; an empty one keeps an assistant opening line valid."""
    out = [dict(m) for m in messages]
    if out and out[0]["role"] == "assistant":
        out.insert(0, {"role": "user", "content": ""})
    return out


@dataclass(frozen=True)
class TemplateQuirks:
    """What a model's chat template needs from the backend."""

    fold_system: bool
    alternate: bool


def _renders(tokenizer: Any, messages: list[RoleMessage]) -> bool:
    try:
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # jinja2's TemplateError from raise_exception, or any error of a template that chokes on the shape.
    except Exception:  # noqa: BLE001
        return False
    return True


def detect_quirks(tokenizer: Any, model_type: str) -> TemplateQuirks:
    """Gemma always folds and alternates; other templates are probed for raising on those shapes."""
    if model_type.lower().startswith("gemma"):
        return TemplateQuirks(fold_system=True, alternate=True)
    if getattr(tokenizer, "chat_template", None) is None:
        return TemplateQuirks(fold_system=True, alternate=False)
    fold = not _renders(tokenizer, [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])
    alternate = not _renders(tokenizer, [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    return TemplateQuirks(fold_system=fold, alternate=alternate)


def _plain_prompt(messages: Sequence[RoleMessage]) -> str:
    # Base models (no chat template) just continue text; a transcript with a trailing cue is the best we can do.
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*lines, "Assistant:"])


def format_prompt(tokenizer: Any, messages: Sequence[RoleMessage], quirks: TemplateQuirks) -> str:
    """Render ``messages`` into the prompt text (special tokens included) with the template's quirks applied."""
    prepared = list(messages)
    if quirks.fold_system:
        prepared = fold_system(prepared)
    if quirks.alternate:
        prepared = ensure_user_first(merge_consecutive(prepared))
    if getattr(tokenizer, "chat_template", None) is None:
        return _plain_prompt(prepared)
    return tokenizer.apply_chat_template(prepared, tokenize=False, add_generation_prompt=True)
