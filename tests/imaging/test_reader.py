"""ImageReader.read against scripted fake models: the call's shape, repair, prose, degrade, errors, cancellation."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from agents.imaging import ImageFindings, ImageInput, ImageReader, findings_json_schema, system_prompt
from tests.imaging.fakes import PNG_BYTES, HangingModel, StrictModel, message_with_metadata, scripted

IMAGE = ImageInput(PNG_BYTES, "image/png", "image-2")
GOOD = json.dumps(
    {
        "observations": ["Right lower zone opacity", "Blunted right costophrenic angle"],
        "impression": "Right lower lobe pneumonia with a small effusion",
        "confidence": 0.6,
        "limitations": ["No lateral view"],
    }
)
GOOD_TEXT = (
    "Observations: Right lower zone opacity; Blunted right costophrenic angle. Impression: Right lower lobe "
    "pneumonia with a small effusion (confidence 0.6). Cannot assess: No lateral view."
)
GARBAGE = "!!! ??? ..."
PROSE = "The radiograph shows patchy opacity in the right lower zone, most likely pneumonia."


def _image_blocks(messages: list) -> list[dict]:
    return [
        part
        for message in messages
        if isinstance(message.content, list)
        for part in message.content
        if isinstance(part, dict) and part.get("type") == "image"
    ]


async def test_one_call_with_the_modality_prompt_the_image_and_the_fenced_question() -> None:
    model = scripted(GOOD)
    read = await ImageReader(model, max_new_tokens=321).read(
        IMAGE, modality="chest_xray", question="Is there an effusion?"
    )
    assert (read.calls, read.degraded, read.error, read.parse_reason) == (1, False, None, "parsed JSON object")
    assert (read.image_id, read.modality, read.reply) == ("image-2", "chest_xray", GOOD)
    assert read.findings == ImageFindings.model_validate_json(GOOD)
    assert read.text == GOOD_TEXT
    [(messages, kwargs)] = model.calls
    assert kwargs == {"max_new_tokens": 321, "json_schema": findings_json_schema()}
    system, human = messages
    assert isinstance(system, SystemMessage) and system.content == system_prompt("chest_xray")
    assert isinstance(human, HumanMessage)
    image, text = human.content
    assert image == {"type": "image", "base64": base64.b64encode(PNG_BYTES).decode(), "mime_type": "image/png"}
    assert "<<<REQUEST\nIs there an effusion?\nREQUEST>>>" in text["text"]


async def test_the_system_prompt_follows_the_modality() -> None:
    model = scripted(GOOD, GOOD)
    reader = ImageReader(model)
    await reader.read(IMAGE)
    await reader.read(ImageInput(PNG_BYTES, "image/jpeg"), modality="pathology")
    assert model.calls[0][0][0].content == system_prompt("clinical_photo")
    assert model.calls[1][0][0].content == system_prompt("pathology")
    assert _image_blocks(model.calls[1][0])[0]["mime_type"] == "image/jpeg"


async def test_metadata_is_summed_over_calls_and_thinking_kept() -> None:
    model = scripted(
        message_with_metadata(GARBAGE, input_tokens=300, output_tokens=5, thinking="hmm"),
        message_with_metadata(f"<unused94>thought\nlook again<unused95>{GOOD}", input_tokens=320, output_tokens=60),
    )
    read = await ImageReader(model).read(IMAGE)
    assert (read.calls, read.input_tokens, read.output_tokens, read.model) == (2, 620, 65, "fake:medgemma")
    assert read.thinking == "hmm\n\nlook again"
    assert read.reply == GOOD and read.seconds > 0


async def test_an_unusable_reply_is_repaired_once_as_text_only() -> None:
    model = scripted(GARBAGE, GOOD)
    read = await ImageReader(model).read(IMAGE, modality="chest_xray")
    assert (read.calls, read.degraded, read.text) == (2, False, GOOD_TEXT)
    assert read.parse_reason == "parsed JSON object after repair (first: no words in reply (punctuation only))"
    first, repair = model.calls[0][0], model.calls[1][0]
    assert repair[: len(first)] == first  # the image stays in the first human message
    assert isinstance(repair[-2], AIMessage) and repair[-2].content == GARBAGE
    assert isinstance(repair[-1], HumanMessage) and isinstance(repair[-1].content, str)
    assert "could not be used (no words in reply" in repair[-1].content
    assert len(_image_blocks(repair)) == 1  # not sent again


async def test_two_unusable_replies_degrade_with_a_text_that_says_so() -> None:
    read = await ImageReader(scripted(GARBAGE, "")).read(IMAGE)
    assert (read.calls, read.degraded, read.findings, read.error) == (2, True, None, None)
    assert read.text.startswith("The image read failed: the image model's reply could not be used")
    assert "empty reply after repair" in read.text
    assert read.reply == ""


async def test_a_prose_reply_is_repaired_and_the_json_wins() -> None:
    model = scripted(PROSE, GOOD)
    read = await ImageReader(model).read(IMAGE)
    assert (read.calls, read.text) == (2, GOOD_TEXT)
    assert "free text instead of the JSON object" in model.calls[1][0][-1].content


async def test_a_prose_reply_is_kept_when_the_repair_fails() -> None:
    read = await ImageReader(scripted(PROSE, GARBAGE)).read(IMAGE)
    assert not read.degraded and read.calls == 2
    assert read.findings == ImageFindings(impression=PROSE, confidence=0.0)
    assert read.text == f"Free-text read (no structured findings, no confidence given): {PROSE}"
    assert read.reply == PROSE
    assert read.parse_reason.endswith("(first: prose)")


async def test_a_model_error_degrades_without_raising() -> None:
    read = await ImageReader(scripted(RuntimeError("CUDA out of memory"))).read(IMAGE)
    assert (read.degraded, read.calls, read.error) == (True, 1, "RuntimeError: CUDA out of memory")
    assert read.text == (
        "The image read failed: the image model could not be called (RuntimeError: CUDA out of memory)."
    )
    assert read.parse_reason == "model error"


async def test_an_error_during_the_repair_keeps_the_prose_read_and_records_the_error() -> None:
    read = await ImageReader(scripted(PROSE, TimeoutError("slow"))).read(IMAGE)
    assert (read.degraded, read.calls, read.error) == (False, 2, "TimeoutError: slow")
    assert read.findings is not None and read.findings.impression == PROSE


async def test_cancellation_propagates() -> None:
    task = asyncio.create_task(ImageReader(HangingModel(messages=iter([]))).read(IMAGE))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_model_rejecting_generation_kwargs_is_called_without_them_from_then_on() -> None:
    model = StrictModel(responses=[GOOD, GOOD])
    reader = ImageReader(model)
    first = await reader.read(IMAGE)
    second = await reader.read(IMAGE)
    assert not first.degraded and not second.degraded and first.error is None
    assert first.calls == 1 and first.text == GOOD_TEXT
    # One refused attempt with the kwargs, then plain calls only.
    assert [sorted(a) for a in model.attempts] == [["json_schema", "max_new_tokens"], [], []]


async def test_other_type_errors_are_recorded_not_retried() -> None:
    read = await ImageReader(scripted(TypeError("'NoneType' object is not subscriptable"))).read(IMAGE)
    assert read.degraded and read.calls == 1 and read.error is not None and "NoneType" in read.error


@pytest.mark.parametrize(
    ("image", "modality", "message"),
    [
        (IMAGE, "xray", "unknown image modality"),
        (ImageInput(b"", "image/png", "image-3"), "clinical_photo", "'image-3' has no bytes"),
        (ImageInput(PNG_BYTES, "text/html"), "clinical_photo", "media type 'text/html'"),
    ],
)
async def test_caller_mistakes_raise_before_any_call(image: ImageInput, modality: str, message: str) -> None:
    model = scripted()
    with pytest.raises(ValueError, match=message):
        await ImageReader(model).read(image, modality=modality)  # type: ignore[arg-type]
    assert model.calls == []


def test_max_new_tokens_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_new_tokens"):
        ImageReader(scripted(), max_new_tokens=0)
