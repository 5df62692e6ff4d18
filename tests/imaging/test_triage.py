"""ImageTriage with a fake classifier: captions per modality, ordering, the one-line text, no labels, failures."""

from __future__ import annotations

import asyncio

import pytest

from agents.imaging import ImageClassifier, ImageInput, ImageTriage, label_phrase
from tests.imaging.fakes import PNG_BYTES, FakeClassifier

IMAGE = ImageInput(PNG_BYTES, "image/png")


async def test_scores_are_mapped_back_to_labels_sorted_and_summarised() -> None:
    classifier = FakeClassifier(
        {
            "a chest X-ray showing Pneumonia": 0.30,
            "a chest X-ray showing Pleural effusion": 0.62,
            "a chest X-ray showing Pneumothorax": 0.08,
        },
        spec="hf:google/medsiglip-448?device=cpu",
    )
    result = await ImageTriage(classifier).triage(
        IMAGE, ["Pneumonia", "Pleural effusion", " pneumonia ", "Pneumothorax", ""], modality="chest_xray"
    )
    [(image, captions)] = classifier.calls
    assert image == PNG_BYTES
    assert captions == [  # repeats and empties dropped, order kept
        "a chest X-ray showing Pneumonia",
        "a chest X-ray showing Pleural effusion",
        "a chest X-ray showing Pneumothorax",
    ]
    assert result.scores == [("Pleural effusion", 0.62), ("Pneumonia", 0.30), ("Pneumothorax", 0.08)]
    assert result.model == "hf:google/medsiglip-448?device=cpu" and result.error is None
    assert result.text == (
        "Zero-shot triage (medsiglip-448; probabilities over the listed candidates only): "
        "Pleural effusion 0.62, Pneumonia 0.30, Pneumothorax 0.08"
    )


@pytest.mark.parametrize(
    ("modality", "caption"),
    [
        ("chest_xray", "a chest X-ray showing psoriasis"),
        ("dermatology", "a photograph of skin showing psoriasis"),
        ("pathology", "a histopathology image showing psoriasis"),
        ("ophthalmology", "an image of the eye showing psoriasis"),
        ("radiology", "a radiology image showing psoriasis"),
        ("clinical_photo", "a clinical photograph showing psoriasis"),
    ],
)
def test_each_modality_has_its_caption(modality: str, caption: str) -> None:
    assert label_phrase("  psoriasis ", modality) == caption  # type: ignore[arg-type]


async def test_no_labels_means_no_call_and_a_text_saying_so() -> None:
    classifier = FakeClassifier({})
    result = await ImageTriage(classifier, model="medsiglip").triage(IMAGE, ["", "  "])
    assert classifier.calls == [] and result.scores == []
    assert "nothing to triage" in result.text and result.model == "medsiglip"


async def test_a_classifier_answering_in_bare_labels_is_understood() -> None:
    class BareLabels:
        async def aclassify(self, image: bytes, labels: list[str]) -> list[tuple[str, float]]:
            return [("melanoma", 0.9), ("Benign naevus", 0.1)]

    assert isinstance(BareLabels(), ImageClassifier)
    result = await ImageTriage(BareLabels()).triage(IMAGE, ["Melanoma", "Benign naevus"], modality="dermatology")
    assert result.scores == [("Melanoma", 0.9), ("Benign naevus", 0.1)]
    assert result.text.startswith("Zero-shot triage (zero-shot image classifier;")


async def test_a_classifier_error_is_reported_not_raised() -> None:
    result = await ImageTriage(FakeClassifier(RuntimeError("weights missing"))).triage(IMAGE, ["Pneumonia"])
    assert result.scores == [] and result.error == "RuntimeError: weights missing"
    assert result.text == "Zero-shot triage failed (RuntimeError: weights missing)."


async def test_cancellation_propagates_through_triage() -> None:
    class Hanging:
        async def aclassify(self, image: bytes, labels: list[str]) -> list[tuple[str, float]]:
            await asyncio.sleep(60)
            raise AssertionError("unreachable")

    task = asyncio.create_task(ImageTriage(Hanging()).triage(IMAGE, ["Pneumonia"]))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
