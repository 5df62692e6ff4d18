"""Turn the image blocks of a chat message into pixels a local processor can take.

A local model never fetches anything: the image store (``tools.images``) downloads, caches and validates images,
and the reader hands the bytes over inline. So only inline images are accepted here, in the two shapes LangChain
callers use: the standard block ``{"type": "image", "base64": ..., "mime_type": ...}`` (also its older spelling
``{"type": "image", "source_type": "base64", "data": ...}``) and the OpenAI shape ``{"type": "image_url",
"image_url": {"url": "data:<mime>;base64,..."}}``. A remote URL is refused rather than fetched behind the store's
back (no cache, no size limit, no digest). Every refusal is an `UnsupportedInputError` naming the block.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import TYPE_CHECKING, Any

from .errors import UnsupportedInputError

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["IMAGE_BLOCK_TYPES", "decode_image", "image_block_bytes"]

IMAGE_BLOCK_TYPES = frozenset({"image", "image_url"})

_DATA_URL = re.compile(r"\Adata:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*?);base64,(?P<data>.*)\Z", re.DOTALL)


def _b64(data: str, where: str) -> bytes:
    # Whitespace is legal in wrapped base64 (MIME); anything else that is not base64 is a broken block.
    try:
        return base64.b64decode(re.sub(r"\s+", "", data), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UnsupportedInputError(f"{where}: the base64 image data is not valid base64 ({exc})") from exc


def _from_url(url: str, where: str) -> bytes:
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None:
            raise UnsupportedInputError(f"{where}: a data URL must be data:<mime type>;base64,<data>")
        return _b64(match.group("data"), where)
    shown = url if len(url) <= 80 else url[:77] + "..."
    raise UnsupportedInputError(
        f"{where}: image URL {shown!r} is not inline data; local image models take base64 images only "
        "(fetch it through the image store, tools.images.ImageStore, and send the bytes)"
    )


def image_block_bytes(block: dict[str, Any], where: str) -> bytes:
    """The raw image bytes of one image block; ``where`` names the block in errors ("image 2 of the human turn")."""
    kind = block.get("type")
    if kind == "image_url":
        inner = block.get("image_url")
        url = inner.get("url") if isinstance(inner, dict) else inner
        if not isinstance(url, str) or not url:
            raise UnsupportedInputError(f"{where}: an image_url block needs image_url.url")
        return _from_url(url, where)
    if kind == "image":
        data = block.get("base64") or (block.get("data") if block.get("source_type", "base64") == "base64" else None)
        if isinstance(data, str) and data:
            return _b64(data, where)
        url = block.get("url")
        if isinstance(url, str) and url:
            return _from_url(url, where)
        if block.get("file_id"):
            raise UnsupportedInputError(f"{where}: image blocks by file id are not supported; send base64 data")
        raise UnsupportedInputError(f"{where}: an image block needs 'base64' data (with 'mime_type')")
    raise UnsupportedInputError(f"{where}: {kind!r} is not an image block")


def decode_image(data: bytes, where: str) -> Image:
    """Open image bytes as an RGB PIL image, fully decoded so a truncated file fails here and not in the model."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            # Palette, greyscale, CMYK and alpha images all become plain RGB, which is what the processors expect.
            return opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnsupportedInputError(f"{where}: the image data cannot be decoded as an image ({exc})") from exc
