"""Image blocks to pixels and messages to a content-list conversation: pure, no model loaded."""

from __future__ import annotations

import base64
import io

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from PIL import Image

from agents.backends import UnsupportedInputError
from agents.backends.image_blocks import decode_image, image_block_bytes
from agents.backends.openai_wire import to_openai_messages
from agents.backends.vision_format import to_vision_conversation


def png(color: tuple[int, int, int], size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(buffer, "PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_block(data: bytes, mime: str = "image/png") -> dict[str, str]:
    return {"type": "image", "base64": b64(data), "mime_type": mime}


def test_both_inline_shapes_give_the_same_bytes() -> None:
    data = png((10, 200, 30))
    standard = image_block_bytes(image_block(data), "here")
    legacy = image_block_bytes({"type": "image", "source_type": "base64", "data": b64(data)}, "here")
    wrapped = "\n".join(b64(data)[i : i + 60] for i in range(0, len(b64(data)), 60))  # MIME-style line breaks
    as_url = image_block_bytes({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{wrapped}"}}, "x")
    assert standard == legacy == as_url == data


def test_decoded_images_are_rgb_whatever_the_mode() -> None:
    grey = decode_image(png((90, 90, 90), mode="L"), "grey")
    assert grey.mode == "RGB" and grey.size == (40, 30) and grey.getpixel((0, 0)) == (90, 90, 90)


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image", "url": "https://example.org/x.png"},
        {"type": "image_url", "image_url": {"url": "http://example.org/x.png"}},
        {"type": "image_url", "image_url": "https://example.org/x.png"},
    ],
)
def test_remote_urls_are_refused_not_fetched(block: dict) -> None:
    with pytest.raises(UnsupportedInputError) as info:
        image_block_bytes(block, "image 1 of message 2 (human)")
    text = str(info.value)
    assert "image 1 of message 2 (human)" in text and "example.org" in text and "image store" in text


def test_broken_blocks_are_clear_errors() -> None:
    with pytest.raises(UnsupportedInputError, match="not valid base64"):
        image_block_bytes({"type": "image", "base64": "not*base64!", "mime_type": "image/png"}, "b")
    with pytest.raises(UnsupportedInputError, match="data:<mime type>;base64"):
        image_block_bytes({"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}, "b")
    with pytest.raises(UnsupportedInputError, match="needs 'base64'"):
        image_block_bytes({"type": "image", "mime_type": "image/png"}, "b")
    with pytest.raises(UnsupportedInputError, match="cannot be decoded as an image"):
        decode_image(b"%PDF-1.4 not an image", "b")
    truncated = png((1, 2, 3), size=(64, 64))[:-30]
    with pytest.raises(UnsupportedInputError, match="cannot be decoded"):
        decode_image(truncated, "b")


def test_system_folded_turns_merged_images_in_marker_order() -> None:
    red, blue, green = png((255, 0, 0)), png((0, 0, 255)), png((0, 255, 0))
    conversation = to_vision_conversation(
        [
            SystemMessage("You read images."),
            HumanMessage([image_block(red), {"type": "text", "text": "First?"}]),
            HumanMessage([{"type": "text", "text": "And"}, image_block(blue)]),
            AIMessage("Two images."),
            ToolMessage([image_block(green)], tool_call_id="t1"),
        ]
    )
    assert conversation.messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "You read images."},
                {"type": "image"},
                {"type": "text", "text": "First?\n\nAnd"},
                {"type": "image"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Two images."}]},
        {"role": "user", "content": [{"type": "text", "text": "Tool result:"}, {"type": "image"}]},
    ]
    colours = [image.getpixel((0, 0)) for image in conversation.images]
    assert colours == [(255, 0, 0), (0, 0, 255), (0, 255, 0)]


def test_system_text_joins_the_leading_text_and_an_assistant_opening_gets_a_user_turn() -> None:
    conversation = to_vision_conversation(
        [SystemMessage("Be brief."), HumanMessage([{"type": "text", "text": "Look:"}, image_block(png((1, 1, 1)))])]
    )
    assert conversation.messages[0]["content"][0] == {"type": "text", "text": "Be brief.\n\nLook:"}
    opening = to_vision_conversation([AIMessage("Hello."), HumanMessage("Hi")])
    assert [m["role"] for m in opening.messages] == ["user", "assistant", "user"]


def test_a_broken_image_names_its_message() -> None:
    with pytest.raises(UnsupportedInputError) as info:
        to_vision_conversation(
            [HumanMessage("hi"), HumanMessage([{"type": "image", "base64": "!!", "mime_type": "x"}])]
        )
    assert "image 1 of message 2 (human)" in str(info.value)
    with pytest.raises(UnsupportedInputError, match="'audio' block"):
        to_vision_conversation([HumanMessage([{"type": "audio", "base64": "AAAA"}])])


def test_openai_wire_sends_inline_images_as_data_urls() -> None:
    data = png((5, 6, 7))
    sent = to_openai_messages(
        [
            SystemMessage([{"type": "text", "text": "You read"}, {"type": "text", "text": "images."}]),
            HumanMessage(
                [image_block(data, "image/png"), {"type": "image_url", "image_url": "data:image/png;base64,AA"}]
            ),
        ]
    )
    assert sent[0] == {"role": "system", "content": "You read\nimages."}  # text-only list content stays a string
    assert sent[1]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(data)}"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
    ]
    with pytest.raises(UnsupportedInputError, match="without image_url.url"):
        to_openai_messages([HumanMessage([{"type": "image_url", "image_url": {}}])])
