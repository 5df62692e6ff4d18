"""The image reader's prompt texts, kept as files in ``prompts/`` beside this module, and the messages built from them.

Each modality has a short focus text (what to look at, in what order); every system prompt is that focus followed by
the same rules (describe only what is visible, no guessed history, say what cannot be assessed, one JSON object).
MedGemma 4B follows long instructions poorly, so both stay a few sentences. Placeholders are ``{name}``, replaced
by name only, so the JSON example needs no brace escaping. The doctor's question enters only inside the REQUEST
fence, with fence look-alikes defused, so it can steer what to look for but cannot close the fence early.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agents.imaging.modality import Modality, check_modality
from agents.prompt_files import read_prompt, render

__all__ = [
    "REQUEST_CLOSE",
    "REQUEST_OPEN",
    "image_block",
    "load_prompt",
    "read_messages",
    "read_text",
    "repair_messages",
    "system_prompt",
]

REQUEST_OPEN = "<<<REQUEST"
REQUEST_CLOSE = "REQUEST>>>"


def load_prompt(name: str) -> str:
    """The text of ``prompts/<name>.txt`` beside this module (read once), without a trailing newline."""
    return read_prompt("agents.imaging", name)


def system_prompt(modality: Modality) -> str:
    """The focus text for ``modality`` followed by the shared rules and reply format."""
    return f"{load_prompt(check_modality(modality))}\n\n{load_prompt('rules')}"


def read_text(question: str | None = None) -> str:
    """The text that follows the image: a bare read, or the doctor's question fenced as a request."""
    body = (question or "").replace(REQUEST_OPEN, "<<REQUEST").replace(REQUEST_CLOSE, "REQUEST>>").strip()
    if not body:
        return load_prompt("read")
    return render(load_prompt("read_request"), question=body)


def image_block(data: bytes, media_type: str) -> dict[str, Any]:
    """LangChain's standard image content block, what every image backend accepts."""
    return {"type": "image", "base64": base64.b64encode(data).decode("ascii"), "mime_type": media_type}


def read_messages(data: bytes, media_type: str, modality: Modality, question: str | None = None) -> list[BaseMessage]:
    """[system prompt, human [image block, text]]: one single-turn read, the image before the words about it."""
    return [
        SystemMessage(system_prompt(modality)),
        HumanMessage(content=[image_block(data, media_type), {"type": "text", "text": read_text(question)}]),
    ]


def repair_messages(messages: Sequence[BaseMessage], bad_reply: str, reason: str) -> list[BaseMessage]:
    """The read's messages plus the unusable reply and a request for the bare JSON; the image is not sent again
    (it stays in the first human message)."""
    # An empty assistant message trips some chat templates; a visible placeholder keeps the turn structure.
    return [
        *messages,
        AIMessage(bad_reply.strip() or "(empty reply)"),
        HumanMessage(render(load_prompt("repair"), reason=reason)),
    ]
