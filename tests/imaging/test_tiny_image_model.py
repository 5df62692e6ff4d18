"""The reader and the triage on real code paths: a tiny random-weight Gemma 3 image-text model and a tiny SigLIP.

Random weights say nothing about reading quality (that needs MedGemma 4B on a GPU); these tests show that a PIL
image goes through the real processor, chat template and generate loop from the reader's messages (image tokens in
the prompt of both the read and its repair), and that a garbage reply degrades cleanly instead of raising.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from agents.backends import build_image_classifier, build_image_model
from agents.imaging import ImageInput, ImageReader, ImageTriage
from tests.vision_models import MM_TOKENS_PER_IMAGE

pytestmark = pytest.mark.slow


def _png(width: int = 48, height: int = 40, seed: int = 7) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(width * height)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class _Metadata(BaseCallbackHandler):
    """Keeps each call's response metadata: the only place the image token count is reported."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.seen.append(dict(response.generations[0][0].message.response_metadata))  # type: ignore[attr-defined]


async def test_a_read_on_the_tiny_model_sends_image_tokens_and_degrades_cleanly(tiny_image_model_dir: Path) -> None:
    model = build_image_model(f"hf:{tiny_image_model_dir}?device=cpu")
    metadata = _Metadata()
    model.callbacks = [metadata]
    # One new token can never be a usable read, so the repair call is made and the read degrades: both paths run.
    read = await ImageReader(model, max_new_tokens=1).read(ImageInput(_png(), "image/png"), modality="chest_xray")
    assert read.calls == 2 and len(metadata.seen) == 2
    assert read.error is None  # the model ran; only its reply was unusable
    assert read.degraded and read.findings is None
    assert read.text.startswith("The image read failed: the image model's reply could not be used")
    assert read.input_tokens > 0 and read.output_tokens >= 1
    for call in metadata.seen:
        assert (call["images"], call["image_tokens"]) == (
            1,
            MM_TOKENS_PER_IMAGE,
        )  # the image reached the model in the repair too


async def test_triage_on_the_tiny_siglip_scores_every_candidate(tiny_siglip_dir: Path) -> None:
    spec = f"hf:{tiny_siglip_dir}?device=cpu"
    result = await ImageTriage(build_image_classifier(spec)).triage(
        ImageInput(_png(), "image/png"), ["Pneumonia", "Pleural effusion", "Pneumothorax"], modality="chest_xray"
    )
    assert result.error is None and result.model == spec
    assert sorted(label for label, _ in result.scores) == ["Pleural effusion", "Pneumonia", "Pneumothorax"]
    assert sum(p for _, p in result.scores) == pytest.approx(1.0, abs=1e-4)
    assert [p for _, p in result.scores] == sorted((p for _, p in result.scores), reverse=True)
    assert result.text.startswith("Zero-shot triage (")
