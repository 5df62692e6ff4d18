"""The OpenAI-compatible image path against a real HTTP server on 127.0.0.1 that answers 400 unless a user
message carries an ``image_url`` part with a base64 data URL."""

from __future__ import annotations

import base64

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agents.backends import ModelRequestError, build_image_model
from agents.backends.openai_chat import OpenAICompatChatModel

from .fake_server import FakeOpenAIServer, data_url_images
from .test_image_input import image_block, png


def _model(server: FakeOpenAIServer, test_id: str) -> OpenAICompatChatModel:
    model = build_image_model(f"openai:medgemma-4b@{server.url('vision', test_id)}", max_retries=0, timeout_s=5.0)
    assert isinstance(model, OpenAICompatChatModel)
    return model


def _decoded(url: str) -> tuple[str, bytes]:
    head, _, data = url.partition(",")
    return head, base64.b64decode(data)


def test_image_block_travels_as_a_data_url(fake_server: FakeOpenAIServer, test_id: str) -> None:
    picture = png((120, 40, 200), size=(33, 21))
    messages = [
        SystemMessage("You read clinical photographs."),
        HumanMessage([image_block(picture), {"type": "text", "text": "What do you see?"}]),
    ]
    reply = _model(fake_server, test_id).invoke(messages)
    assert reply.content == "I see 1 image(s)."
    _, body = fake_server.requests[f"vision-{test_id}"][0]
    urls = data_url_images(body)
    assert len(urls) == 1
    assert _decoded(urls[0]) == ("data:image/png;base64", picture)  # the very bytes the caller sent
    assert body["messages"][0] == {"role": "system", "content": "You read clinical photographs."}
    assert body["messages"][1]["content"][1] == {"type": "text", "text": "What do you see?"}
    # Were usage missing, the estimate would count the text, not the thousands of base64 characters.
    assert OpenAICompatChatModel._prompt_chars(body) == len("You read clinical photographs.What do you see?")


async def test_two_images_async(fake_server: FakeOpenAIServer, test_id: str) -> None:
    first, second = png((1, 2, 3)), png((4, 5, 6))
    jpeg_url = {
        "type": "image_url",
        "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(second).decode()},
    }
    model = _model(fake_server, test_id)
    reply = await model.ainvoke([HumanMessage([image_block(first), jpeg_url, {"type": "text", "text": "Compare."}])])
    await model.aclose()
    assert reply.content == "I see 2 image(s)."
    _, body = fake_server.requests[f"vision-{test_id}"][0]
    assert [_decoded(u)[1] for u in data_url_images(body)] == [first, second]


def test_the_server_check_can_fail(fake_server: FakeOpenAIServer, test_id: str) -> None:
    # Without an image the vision server refuses: the 200s above mean it really found the image parts.
    with pytest.raises(ModelRequestError) as info:
        _model(fake_server, test_id).invoke([HumanMessage("no picture here")])
    assert info.value.status == 400 and "image_url" in str(info.value)
