"""Zero-shot image classification on a tiny random SigLIP (real processor, real towers, real pixels)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agents.backends import (
    ModelLoadError,
    ModelSpecError,
    UnsupportedInputError,
    ZeroShotImageClassifier,
    build_image_classifier,
)

from .test_image_input import png

LABELS = ["pneumonia", "pneumothorax", "normal chest radiograph", "cardiomegaly"]


@pytest.fixture(scope="module")
def classifier(tiny_siglip_dir: Path) -> ZeroShotImageClassifier:
    # One load for the module: the Gemma tokenizer behind the tiny SigLIP takes seconds to read.
    built = build_image_classifier(f"hf:{tiny_siglip_dir}?device=cpu")
    assert isinstance(built, ZeroShotImageClassifier) and built.spec == f"hf:{tiny_siglip_dir}?device=cpu"
    built.warm_up()
    return built


def _reference_probabilities(classifier: ZeroShotImageClassifier, image: bytes, labels: list[str]) -> dict[str, float]:
    """The softmax of the model's own image-text logits, computed here with the plain transformers calls."""
    import io

    import torch
    from PIL import Image

    loaded = classifier._load()  # the same weights; the scoring and pairing with labels is what is checked
    pixels = Image.open(io.BytesIO(image)).convert("RGB")
    length = loaded.model.config.text_config.max_position_embeddings
    inputs = loaded.processor(
        text=labels, images=[pixels], padding="max_length", max_length=length, return_tensors="pt"
    )
    with torch.no_grad():
        probs = loaded.model(**inputs).logits_per_image[0].softmax(-1).tolist()
    return dict(zip(labels, probs, strict=True))


@pytest.mark.slow
def test_probabilities_over_the_labels_sorted(classifier: ZeroShotImageClassifier) -> None:
    image = png((180, 180, 180), size=(64, 48))
    scores = classifier.classify(image, LABELS)
    assert sorted(label for label, _ in scores) == sorted(LABELS)
    assert sum(p for _, p in scores) == pytest.approx(1.0, abs=1e-5)
    assert [p for _, p in scores] == sorted((p for _, p in scores), reverse=True)
    reference = _reference_probabilities(classifier, image, LABELS)
    assert [label for label, _ in scores] == sorted(LABELS, key=lambda label: reference[label], reverse=True)
    for label, probability in scores:
        assert probability == pytest.approx(reference[label], abs=1e-5)
    # Asking in another order pairs each label with its own score.
    assert dict(classifier.classify(image, list(reversed(LABELS)))) == pytest.approx(dict(scores), abs=1e-5)


@pytest.mark.slow
def test_async_matches_sync_and_the_image_matters(classifier: ZeroShotImageClassifier) -> None:
    dark, bright = png((0, 0, 0)), png((255, 255, 255))

    async def both() -> list[list[tuple[str, float]]]:
        return list(await asyncio.gather(classifier.aclassify(dark, LABELS), classifier.aclassify(bright, LABELS)))

    dark_async, bright_async = asyncio.run(both())
    assert dark_async == classifier.classify(dark, LABELS)
    assert dict(dark_async) != pytest.approx(dict(bright_async), abs=1e-6)


@pytest.mark.slow
def test_bad_inputs_are_clear_errors(classifier: ZeroShotImageClassifier) -> None:
    with pytest.raises(UnsupportedInputError, match="cannot be decoded"):
        classifier.classify(b"<html>not found</html>", LABELS)
    with pytest.raises(ValueError, match="non-empty"):
        classifier.classify(png((1, 1, 1)), [])
    with pytest.raises(ValueError, match="distinct"):
        classifier.classify(png((1, 1, 1)), ["a", "a "])
    with pytest.raises(TypeError):
        classifier.classify(png((1, 1, 1)), "pneumonia")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("embedded", "hf:google/medsiglip-448"),
        ("openai:medsiglip@http://127.0.0.1:9/v1", "only hf:"),
        ("hf:google/medsiglip-448?device=cuda&quant=4bit", "quant is not supported"),
        ("hf:", "missing hub id"),
    ],
)
def test_bad_specs_refused_before_loading(spec: str, needle: str) -> None:
    with pytest.raises(ModelSpecError, match=needle):
        build_image_classifier(spec)


def test_missing_weights_name_the_spec(tmp_path: Path) -> None:
    spec = f"hf:{tmp_path / 'no-such-model'}?device=cpu"
    classifier = build_image_classifier(spec)  # cheap: nothing loads until the first call
    with pytest.raises(ModelLoadError) as info:
        classifier.classify(png((1, 1, 1)), LABELS)
    assert spec in str(info.value)
