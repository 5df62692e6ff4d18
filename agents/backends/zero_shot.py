"""Zero-shot image classification with a SigLIP-family model (MedSigLIP, ``google/medsiglip-448``).

A fast check before a generative read: the image and a few candidate labels (a differential's diagnoses) go
through the image and text towers, and the image-text similarities become a softmax over the labels. It is a
separate class, not a chat model: it returns scores, never text. Weights load once per instance on first use
(the classifier is small and not shared through the chat-model registry); torch and transformers are imported
only then, so building a classifier is cheap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .devices import detect_accelerators, resolve_device, resolve_dtype
from .errors import BackendError, ModelLoadError, ModelSpecError
from .image_blocks import decode_image
from .spec import ModelSpec, parse_spec

__all__ = ["MEDSIGLIP_SPEC", "ZeroShotImageClassifier", "build_image_classifier"]

MEDSIGLIP_SPEC = "hf:google/medsiglip-448"


@dataclass
class _Loaded:
    model: Any
    processor: Any
    device: str
    dtype: str
    max_length: int | None
    load_seconds: float


class ZeroShotImageClassifier:
    """Labels in, probabilities out (softmax over the labels, highest first); ``hf:`` specs only."""

    def __init__(self, spec: str | ModelSpec) -> None:
        parsed = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
        _check_spec(parsed)
        self._spec = parsed
        self.spec: str = parsed.raw
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the weights now instead of on the first call."""
        self._load()

    def _load(self) -> _Loaded:
        with self._load_lock:
            if self._loaded is None:
                try:
                    self._loaded = _load(self._spec)
                except BackendError as exc:
                    raise type(exc)(f"spec {self.spec!r}: {exc}") from exc
                except Exception as exc:
                    raise ModelLoadError(f"spec {self.spec!r}: cannot load {self._spec.model!r}: {exc}") from exc
            return self._loaded

    def classify(self, image: bytes, labels: Sequence[str]) -> list[tuple[str, float]]:
        """Score ``image`` against each label; probabilities sum to 1 over the labels given."""
        import torch

        names = _check_labels(labels)
        picture = decode_image(image, f"image for {self.spec}")
        loaded = self._load()
        inputs = loaded.processor(
            text=names,
            images=[picture],
            # The model was trained on text padded to its full length (MedSigLIP's card does the same).
            padding="max_length",
            max_length=loaded.max_length,
            truncation=True,
            return_tensors="pt",
        )
        dtype = getattr(torch, loaded.dtype)
        moved = {
            k: v.to(loaded.device, dtype=dtype) if v.is_floating_point() else v.to(loaded.device)
            for k, v in inputs.items()
        }
        with torch.inference_mode():
            logits = loaded.model(**moved).logits_per_image[0]
        probs = torch.softmax(logits.float(), dim=-1).tolist()
        return sorted(zip(names, probs, strict=True), key=lambda pair: pair[1], reverse=True)

    async def aclassify(self, image: bytes, labels: Sequence[str]) -> list[tuple[str, float]]:
        """`classify` in a worker thread, so the event loop keeps serving while the towers run."""
        return await asyncio.to_thread(self.classify, image, labels)


def _check_spec(spec: ModelSpec) -> None:
    if spec.kind != "hf":
        raise ModelSpecError(
            f"image classifier spec {spec.raw!r}: only hf:<hub id or path> specs can classify images "
            f"(zero-shot needs the model's own image and text towers), e.g. {MEDSIGLIP_SPEC}"
        )
    if spec.quant is not None:
        raise ModelSpecError(f"image classifier spec {spec.raw!r}: quant is not supported (the model is small)")


def _check_labels(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str):
        raise TypeError("labels must be a sequence of strings, not one string")
    names = [str(label).strip() for label in labels]
    if not names or any(not name for name in names):
        raise ValueError(f"labels must be non-empty strings, got {list(labels)!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"labels must be distinct, got {names!r}")
    return names


def _load(spec: ModelSpec) -> _Loaded:
    import torch
    from transformers import AutoConfig, AutoModel, AutoProcessor

    started = time.perf_counter()
    acc = detect_accelerators()
    device = resolve_device(spec.device, acc)
    config = AutoConfig.from_pretrained(spec.model)
    dtype = resolve_dtype(spec.dtype, device, acc, model_type=str(getattr(config, "model_type", "") or ""))
    model = AutoModel.from_pretrained(spec.model, dtype=getattr(torch, dtype)).to(device).eval()
    if not hasattr(model, "get_image_features") or not hasattr(model, "get_text_features"):
        raise ModelLoadError(f"{spec.model!r} is a {type(model).__name__}, not a two-tower image-text model")
    processor = AutoProcessor.from_pretrained(spec.model)
    text_config = getattr(config, "text_config", None)
    max_length = getattr(text_config, "max_position_embeddings", None)
    return _Loaded(
        model=model,
        processor=processor,
        device=device,
        dtype=dtype,
        max_length=int(max_length) if isinstance(max_length, int) else None,
        load_seconds=time.perf_counter() - started,
    )


def build_image_classifier(spec: str | ModelSpec) -> ZeroShotImageClassifier:
    """A zero-shot classifier for an ``hf:`` spec (MedSigLIP); nothing loads until the first call."""
    return ZeroShotImageClassifier(spec)
