"""``StoreImageLookup``: the consultation's ``ImageLookup`` over the image store and the image reader.

The lookup holds references only; each read loads the bytes from the store (which re-checks their digest), hands
them to the reader and lets them go, so no image ever reaches graph state or a checkpoint. Every outcome is an
``ImageReply`` with a status, never an exception:

- no image at all, or an id the consultation does not have -> ``unavailable`` (the text lists what there is);
- an image but neither a reader nor a triage classifier -> ``no_reader``;
- the store cannot give the bytes, or the model fails -> ``failed`` (the text says why, without the image's
  source: a file name or URL can name the diagnosis);
- otherwise ``read``, citing ``image:<id>@sha256:<digest>``.

With a triage classifier (MedSigLIP), the doctor's current diagnoses are scored against the image and the scores
follow the read; a triage without a reader answers with the scores alone once there is a differential to score.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import perf_counter

from agents.imaging import (
    MODALITY_LABELS,
    ImageInput,
    ImageRead,
    ImageReader,
    ImageTriage,
    Modality,
    TriageResult,
    check_modality,
)
from graphs.image_lookup import NO_IMAGE, ImageReply, image_source
from tools.images import ImageRef, ImageStore

__all__ = ["StoreImageLookup"]

logger = logging.getLogger(__name__)


class StoreImageLookup:
    """The images of one consultation, read from ``store`` by ``reader`` (and scored by ``triage`` when given)."""

    def __init__(
        self,
        store: ImageStore,
        refs: Sequence[ImageRef],
        reader: ImageReader | None,
        *,
        modality: Modality = "clinical_photo",
        missing: Sequence[str] = (),
        triage: ImageTriage | None = None,
    ) -> None:
        """``refs`` are the images the store holds for this consultation (their ids unique), ``missing`` the
        reasons expected images could not be had; ``reader`` None means no image model is configured."""
        ids = [ref["id"] for ref in refs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"image ids must be unique within a consultation; repeated: {', '.join(duplicates)}")
        self.store = store
        self.reader = reader
        self.triage = triage
        self.modality: Modality = check_modality(modality)
        self._refs: list[ImageRef] = [ImageRef(**ref) for ref in refs]
        self._missing = [str(reason) for reason in missing]

    def images(self) -> list[ImageRef]:
        return [ImageRef(**ref) for ref in self._refs]

    def missing(self) -> list[str]:
        return list(self._missing)

    def describe(self) -> list[str]:
        # The modality and the size only: a file name or URL could name the diagnosis ("melanoma.jpg").
        label = MODALITY_LABELS.get(self.modality, self.modality.replace("_", " "))
        return [f"{ref['id']}: {label}, {ref['width']}x{ref['height']} pixels" for ref in self._refs]

    async def read(self, image_id: str | None, question: str | None, *, differential: Sequence[str] = ()) -> ImageReply:
        if not self._refs:
            # The missing reasons stay out: they name sources, and a file name or URL can give the diagnosis away.
            return ImageReply(text=NO_IMAGE, image_id=image_id, status="unavailable")
        ref = self._refs[0] if image_id is None else next((r for r in self._refs if r["id"] == image_id), None)
        if ref is None:
            known = ", ".join(r["id"] for r in self._refs)
            return ImageReply(text=f"There is no image {image_id!r} for this patient; the images are: {known}.",
                              image_id=image_id, status="unavailable")
        name = ref["id"]
        labels = list(dict.fromkeys(d.strip() for d in differential if d.strip()))
        if self.reader is None and (self.triage is None or not labels):
            why = "no image reader is configured" if self.triage is None else (
                "no image reader is configured, and the triage classifier has no diagnoses to score yet")
            return ImageReply(text=f"Image {name} cannot be read: {why}.", image_id=name, status="no_reader")
        started = perf_counter()
        try:
            image = ImageInput(data=self.store.load(ref), media_type=ref["media_type"], image_id=name)
        except Exception as exc:  # noqa: BLE001 - a missing or corrupt stored image is told to the doctor
            # The store's message names the image's source, which the doctor must not see; the log keeps it.
            logger.warning("image %s could not be loaded: %s", name, exc)
            return ImageReply(text=f"Image {name} could not be loaded from the image store ({type(exc).__name__}).",
                              image_id=name, status="failed", seconds=perf_counter() - started)

        read: ImageRead | None = None
        if self.reader is not None:
            try:
                read = await self.reader.read(image, modality=self.modality, question=question)
            except Exception as exc:  # noqa: BLE001 - the reader raises only for bad input; still never fatal
                logger.warning("image %s could not be read: %s", name, exc)
                return ImageReply(text=f"The read of image {name} failed: {exc}", image_id=name, status="failed",
                                  seconds=perf_counter() - started)
        scores, triage_error = await self._triage(image, labels)
        del image  # the bytes go no further than this read

        parts = [read.text] if read is not None else []
        if scores is not None:
            parts.append(scores.text)
        elif triage_error is not None:
            parts.append(f"The triage of image {name} failed: {triage_error}")
        triage_failed = scores is None or scores.error is not None
        read_failed = read.findings is None if read is not None else triage_failed
        return ImageReply(
            text=f"{name}: " + "\n".join(p.strip() for p in parts if p.strip()),
            image_id=name,
            status="failed" if read_failed else "read",
            sources=[] if read_failed else [image_source(ref)],
            model=read.model if read is not None else (scores.model if scores is not None else None),
            input_tokens=read.input_tokens if read is not None else 0,
            output_tokens=read.output_tokens if read is not None else 0,
            seconds=perf_counter() - started,
            calls=(read.calls if read is not None else 0) + (scores is not None),
            degraded=read.degraded if read is not None else False,
        )

    async def _triage(self, image: ImageInput, labels: list[str]) -> tuple[TriageResult | None, str | None]:
        """The triage of ``labels`` and None, or None and why it raised; None, None when it does not run. (The
        triage reports a classifier failure in its result; this guards a triage that raises all the same.)"""
        if self.triage is None or not labels:
            return None, None
        try:
            return await self.triage.triage(image, labels, modality=self.modality), None
        except Exception as exc:  # noqa: BLE001 - the scores are an extra; the read stands without them
            logger.warning("image %s triage failed: %s", image.image_id, exc)
            return None, f"{type(exc).__name__}: {exc}"
