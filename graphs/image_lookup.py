"""The consultation's view of a patient's images: which there are, why any are missing, and a read on request.

The consultation graph does not know where images come from or which model reads them. ``ImageLookup`` is what it
needs; ``graphs.image_reading.StoreImageLookup`` implements it over the image store and the image reader, tests in a
few lines. State keeps only ``ImageRef``s (id, source, digest, size): the bytes stay in the store and are loaded
when a read needs them.

A lookup answers every read with an ``ImageReply`` whose ``status`` says what happened; it never raises for a
missing image, a store error or a failing model, so the doctor is told in text and the consultation goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from graphs.state import ImageStatus
from tools.images import ImageRef

__all__ = ["NO_IMAGE", "ImageLookup", "ImageReply", "image_source"]

NO_IMAGE = "No image is available for this patient."


def image_source(ref: ImageRef) -> str:
    """How a finding cites the image it was read from: ``image:<id>@sha256:<digest>``."""
    return f"image:{ref['id']}@sha256:{ref['sha256']}"


@dataclass(frozen=True)
class ImageReply:
    """The answer to one read: the text the doctor gets, which image it concerns, what happened, what it cost.

    ``status``: ``read`` (findings from the image), ``unavailable`` (no such image, or none at all),
    ``no_reader`` (an image but no model to read it), ``failed`` (the store or the model failed; the text says why).
    ``sources`` cite what was read (``image:<id>@sha256:<digest>``); empty unless ``status`` is ``read``.
    """

    text: str
    image_id: str | None
    status: ImageStatus
    sources: list[str] = field(default_factory=list)
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0
    degraded: bool = False


@runtime_checkable
class ImageLookup(Protocol):
    """A patient's images as the consultation sees them."""

    def images(self) -> list[ImageRef]:
        """References to the images the consultation can read (never their bytes)."""
        ...

    def missing(self) -> list[str]:
        """Why expected images could not be had, one line each (``"image-1: <reason>"``)."""
        ...

    def describe(self) -> list[str]:
        """One line per image for the doctor (``"image-1: skin photograph"``): nothing that could give the
        diagnosis away, such as a file name or URL."""
        ...

    async def read(self, image_id: str | None, question: str | None, *, differential: Sequence[str] = ()) -> ImageReply:
        """Read image ``image_id`` (None: the first) for ``question`` (None: a general read); ``differential`` is the
        doctor's current list of diagnoses, which a lookup may score the image against."""
        ...
