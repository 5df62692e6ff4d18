"""Zero-shot image triage: candidate diagnoses in, probabilities over exactly those candidates out (MedSigLIP).

A fast check before, or beside, a full read: the classifier scores the image against one phrase per candidate
("a chest X-ray showing pneumonia"), and the softmax is over the listed candidates only, so the numbers say which
candidate fits best, never how likely any of them is. ``ImageTriage.triage`` never raises because of the classifier:
a failure gives a result with no scores, the error, and a text saying triage failed.
``asyncio.CancelledError`` is not caught.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Protocol, runtime_checkable

from agents.imaging.modality import Modality, check_modality
from agents.imaging.reader import ImageInput

__all__ = ["LABEL_TEMPLATES", "ImageClassifier", "ImageTriage", "TriageResult", "label_phrase"]

logger = logging.getLogger(__name__)

# SigLIP-style encoders score captions, not bare names: a caption naming the kind of image scores more sharply.
LABEL_TEMPLATES: dict[Modality, str] = {
    "chest_xray": "a chest X-ray showing {label}",
    "dermatology": "a photograph of skin showing {label}",
    "pathology": "a histopathology image showing {label}",
    "ophthalmology": "an image of the eye showing {label}",
    "radiology": "a radiology image showing {label}",
    "clinical_photo": "a clinical photograph showing {label}",
}


@runtime_checkable
class ImageClassifier(Protocol):
    """Zero-shot classification: softmax over ``labels`` for one image, sorted most likely first."""

    async def aclassify(self, image: bytes, labels: Sequence[str]) -> list[tuple[str, float]]: ...


@dataclass(frozen=True)
class TriageResult:
    """Scores per candidate (most likely first, the caller's label text), and one line for the doctor."""

    scores: list[tuple[str, float]]
    model: str | None
    seconds: float
    text: str
    error: str | None = None


def label_phrase(label: str, modality: Modality = "clinical_photo") -> str:
    """The caption the classifier scores for candidate ``label`` on an image of ``modality``."""
    return LABEL_TEMPLATES[check_modality(modality)].replace("{label}", " ".join(label.split()))


def _display_name(model: str | None) -> str:
    """The model's short name for the doctor: "hf:google/medsiglip-448?device=cpu" -> "medsiglip-448"."""
    if not model:
        return "zero-shot image classifier"
    name = model.split("?", 1)[0].rstrip("/")
    return name.rsplit("/", 1)[-1].split(":", 1)[-1] or model


def _candidates(labels: Sequence[str]) -> list[str]:
    """The labels stripped, empties and case-insensitive repeats dropped, order kept."""
    out: list[str] = []
    seen: set[str] = set()
    for label in labels:
        text = " ".join(str(label).split())
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            out.append(text)
    return out


class ImageTriage:
    """Ranks candidate diagnoses for an image with a zero-shot ``classifier`` (``model`` names it in the text)."""

    def __init__(self, classifier: ImageClassifier, *, model: str | None = None) -> None:
        self.classifier = classifier
        # ZeroShotImageClassifier carries its spec; a bare classifier may not.
        spec = getattr(classifier, "spec", None)
        self.model = model or (spec if isinstance(spec, str) else None)

    async def triage(
        self, image: ImageInput, labels: Sequence[str], *, modality: Modality = "clinical_photo"
    ) -> TriageResult:
        """Probabilities over ``labels`` (candidate diagnoses); no labels means no classifier call."""
        check_modality(modality)
        started = perf_counter()
        candidates = _candidates(labels)
        if not candidates:
            return TriageResult([], self.model, 0.0, "Zero-shot triage: no candidate diagnoses, nothing to triage.")
        phrases = {label_phrase(label, modality): label for label in candidates}
        try:
            raw = await self.classifier.aclassify(bytes(image.data), list(phrases))
        except Exception as exc:  # noqa: BLE001 - a failed triage is reported beside the read, never fatal
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("zero-shot triage of %s failed: %s", image.image_id, error)
            return TriageResult(
                [], self.model, perf_counter() - started, f"Zero-shot triage failed ({error[:300]}).", error
            )
        # Back from captions to the caller's labels; a classifier that answers in bare labels is understood too.
        by_key = {label.casefold(): label for label in candidates}
        by_key.update((phrase.casefold(), label) for phrase, label in phrases.items())
        scores = [(by_key.get(str(name).casefold(), str(name)), float(p)) for name, p in raw]
        scores.sort(key=lambda pair: pair[1], reverse=True)
        listed = ", ".join(f"{label} {p:.2f}" for label, p in scores)
        text = (
            f"Zero-shot triage ({_display_name(self.model)}; probabilities over the listed candidates only): "
            f"{listed or 'no scores returned'}"
        )
        return TriageResult(scores, self.model, perf_counter() - started, text)
