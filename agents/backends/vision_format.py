"""Turn LangChain messages with images into the content-list conversation an image-text chat template takes.

The text path (`chat_format`) flattens every message to a string; an image model needs each turn as a list of
``{"type": "text", "text": ...}`` and ``{"type": "image"}`` items so its template can place an image marker
exactly where the caller put the image. The rules are the text path's, applied to content lists: Gemma has no
system turn, so system text is folded into the first user turn (Google's advice); turns of the same role are
merged because Gemma's template insists on strict user/model alternation; an assistant opening gets an empty
user turn before it. These are harmless for templates that would have accepted the original shape, so they are
applied for every image-text model. The images are returned in the order their markers appear in the final
conversation, which is the order the processor pairs markers with images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage

from .chat_format import message_role
from .errors import UnsupportedInputError
from .image_blocks import IMAGE_BLOCK_TYPES, decode_image, image_block_bytes

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["VisionConversation", "to_vision_conversation"]

Item = dict[str, Any]
Turn = dict[str, Any]  # {"role": "user" | "assistant", "content": list[Item]}


@dataclass(frozen=True)
class VisionConversation:
    """Template-ready turns (image items carry no pixels) and the decoded images, in marker order."""

    messages: list[Turn]
    images: list[Image]


def _add_text(items: list[Item], text: str) -> None:
    # Adjacent text blocks of one message join with a newline, as the text path's `message_text` joins them.
    if items and items[-1]["type"] == "text":
        items[-1] = {"type": "text", "text": f"{items[-1]['text']}\n{text}"}
    else:
        items.append({"type": "text", "text": text})


def _items(message: BaseMessage, index: int) -> list[Item]:
    content = message.content
    blocks = [content] if isinstance(content, str) else list(content)
    # No tool role in MedGemma: tool output goes back as a user turn the model can read.
    items: list[Item] = [{"type": "text", "text": "Tool result:"}] if message.type == "tool" else []
    pictures = 0
    for block in blocks:
        if isinstance(block, str):
            _add_text(items, block)
        elif isinstance(block, dict) and block.get("type") == "text":
            _add_text(items, str(block.get("text", "")))
        elif isinstance(block, dict) and block.get("type") in IMAGE_BLOCK_TYPES:
            pictures += 1
            where = f"image {pictures} of message {index + 1} ({message.type})"
            # The pixels ride along in the item until the final order is known; see `_take_images`.
            items.append({"type": "image", "image": decode_image(image_block_bytes(block, where), where)})
        else:
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            raise UnsupportedInputError(
                f"message {index + 1} ({message.type}) holds a {kind!r} block; "
                "local image-text models accept text and inline image blocks"
            )
    return items


def _append(items: list[Item], more: Sequence[Item]) -> list[Item]:
    """Concatenate item lists, joining a text item that meets another text item with a blank line."""
    out = [dict(item) for item in items]
    for item in more:
        if item["type"] == "text" and out and out[-1]["type"] == "text":
            parts = [p for p in (out[-1]["text"], item["text"]) if p.strip()]
            out[-1] = {"type": "text", "text": "\n\n".join(parts)}
        else:
            out.append(dict(item))
    return out


def _fold_system(turns: list[Turn]) -> list[Turn]:
    system: list[Item] = []
    for turn in turns:
        if turn["role"] == "system":
            system = _append(system, turn["content"])
    rest = [turn for turn in turns if turn["role"] != "system"]
    if not system:
        return rest
    for i, turn in enumerate(rest):
        if turn["role"] == "user":
            rest[i] = {"role": "user", "content": _append(system, turn["content"])}
            return rest
    return [{"role": "user", "content": system}, *rest]


def _merge_consecutive(turns: list[Turn]) -> list[Turn]:
    out: list[Turn] = []
    for turn in turns:
        if out and out[-1]["role"] == turn["role"]:
            out[-1] = {"role": turn["role"], "content": _append(out[-1]["content"], turn["content"])}
        else:
            out.append(turn)
    if out and out[0]["role"] == "assistant":
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": ""}]})
    return out


def _take_images(turns: list[Turn]) -> VisionConversation:
    images: list[Image] = []
    messages: list[Turn] = []
    for turn in turns:
        content: list[Item] = []
        for item in turn["content"]:
            if item["type"] == "image":
                images.append(item["image"])
                content.append({"type": "image"})
            else:
                content.append(item)
        messages.append({"role": turn["role"], "content": content})
    return VisionConversation(messages=messages, images=images)


def to_vision_conversation(messages: Sequence[BaseMessage]) -> VisionConversation:
    """Decode the images, fold system text into the first user turn and merge same-role turns."""
    turns = [{"role": message_role(m), "content": _items(m, i)} for i, m in enumerate(messages)]
    return _take_images(_merge_consecutive(_fold_system(turns)))
