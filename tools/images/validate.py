"""Decide whether bytes are an image the project can read, before anything is stored or sent to a model.

The order matters: the byte limit is checked before Pillow sees anything; Pillow then reads only the header, so the
pixel limit (the guard against decompression bombs: a few kilobytes that decode to gigabytes) is checked before any
pixel is decoded; only then is the file verified and its first frame decoded, which is what finds truncated and
corrupt files. Anything Pillow cannot identify is described by its first bytes ("looks like HTML"), because the
usual failure is not a damaged image but a web page or an error text saved under an image's name.

Only raster formats the image-text processors read are accepted: PNG, JPEG, WEBP, GIF (the first frame), BMP and
TIFF (the first page). DICOM is refused with a pointer to export a PNG or JPEG.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from .errors import ImageInvalidError, ImageTooLargeError
from .sources import redact

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "EXTENSIONS",
    "MEDIA_TYPES",
    "ImageInfo",
    "validate_image",
]

DEFAULT_MAX_BYTES = 20_000_000
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MIN_SIDE = 16

MEDIA_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
}
_PILLOW_FORMATS = list(MEDIA_TYPES)  # only these parsers ever see untrusted bytes
_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
]


@dataclass(frozen=True)
class ImageInfo:
    """What validation learned: ``format`` is Pillow's name (``PNG``, ``JPEG``...), sizes are in pixels."""

    media_type: str
    width: int
    height: int
    format: str


def _is_dicom(data: bytes) -> bool:
    return data[128:132] == b"DICM"


def _magic_format(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM" and data[6:10] == b"\x00\x00\x00\x00":  # "BM" alone also starts ordinary text
        return "BMP"
    return next((name for magic, name in _MAGIC if data.startswith(magic)), None)


def describe(data: bytes) -> str:
    """What bytes that are not a readable image look like, as a phrase: ``looks like HTML (a web page...)``."""
    if not data:
        return "is empty (0 bytes)"
    if _is_dicom(data):
        return "is a DICOM file; DICOM is not supported yet; export a PNG/JPEG"
    head = data[:4096]
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith(b"%pdf"):
        return "looks like a PDF document, not an image"
    if lowered.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in lowered:
        return "looks like HTML (a web page, perhaps the page around the image or a login page), not an image"
    if b"<svg" in lowered and lowered.startswith(b"<"):
        return "looks like an SVG drawing; vector images are not supported, export a PNG"
    if lowered.startswith(b"<"):
        return "looks like XML, not an image"
    if lowered.startswith((b"{", b"[")):
        return "looks like JSON, not an image"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace").strip()
        return f"looks like an ISO media file (brand {brand!r}: HEIC, AVIF or video), which is not supported; export a PNG/JPEG"
    if head.startswith(b"PK\x03\x04"):
        return "looks like a ZIP archive, not an image"
    if head.startswith(b"\x1f\x8b"):
        return "looks like gzip-compressed data, not an image"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # a multi-byte character cut by the 4 KiB window is still text
                return f"is not a recognised image format (first bytes: {head[:8].hex(' ')})"
        return "looks like text, not an image"
    return f"is not a recognised image format (first bytes: {head[:8].hex(' ')})"


def validate_image(
    data: bytes,
    *,
    source: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
) -> ImageInfo:
    """Check that ``data`` is a readable PNG, JPEG, WEBP, GIF, BMP or TIFF within the limits, and describe it.

    Raises `ImageTooLargeError` (bytes or pixels over the limit) or `ImageInvalidError` (anything else wrong), with
    a message naming ``source`` (redacted: user info and credential-like query values never appear).
    """
    shown = redact(source)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"image {shown!r}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"image {shown!r} has {len(data):,} bytes, over the limit of {max_bytes:,}", source=shown
        )
    if not data or _is_dicom(data):
        raise ImageInvalidError(f"image {shown!r} {describe(data)}", source=shown)
    expected = _magic_format(data)
    try:
        image = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image {shown!r} declares too many pixels ({exc})", source=shown) from exc
    except UnidentifiedImageError as exc:
        if expected:
            raise ImageInvalidError(f"image {shown!r} is a corrupt or truncated {expected} file", source=shown) from exc
        raise ImageInvalidError(f"image {shown!r} {describe(data)}", source=shown) from exc
    except Exception as exc:  # Pillow's plugins raise a zoo of types (SyntaxError, struct.error...) on bad headers
        raise ImageInvalidError(
            f"image {shown!r} is a corrupt or truncated {expected or 'image'} file ({exc})", source=shown
        ) from exc
    with image:
        # MPO is what Pillow's JPEG reader calls a camera JPEG carrying extra frames (a preview, a stereo pair);
        # its first frame is an ordinary JPEG, so it is reported as one.
        fmt = "JPEG" if image.format == "MPO" else str(image.format)
        width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image {shown!r} is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}",
            source=shown,
        )
    if min(width, height) < min_side:
        raise ImageInvalidError(
            f"image {shown!r} is {width}x{height} pixels; images under {min_side} pixels on a side are refused",
            source=shown,
        )
    try:
        # verify() checks structure and checksums (PNG CRCs) but leaves the object unusable, hence the reopen;
        # load() then decodes the first frame, which is what catches a truncated JPEG or a short PNG data stream.
        with Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS) as image:
            image.verify()
        with Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS) as image:
            image.load()
            if image.size != (width, height):
                raise ValueError(f"the decoded size {image.size} differs from the header's {(width, height)}")
    except Exception as exc:  # see above: any decoder failure means the file is damaged
        raise ImageInvalidError(f"image {shown!r} is a corrupt or truncated {fmt} file ({exc})", source=shown) from exc
    return ImageInfo(media_type=MEDIA_TYPES[fmt], width=width, height=height, format=fmt)
