"""validate_image on real bytes: every accepted format, and every way a file can fail to be an image."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from tools.images import ImageInfo, ImageInvalidError, ImageTooLargeError, validate_image

from . import HTML_PAGE, dicom_bytes, image_bytes, png_header_only


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
    ],
)
def test_supported_formats_are_described(fmt: str, media_type: str) -> None:
    info = validate_image(image_bytes(fmt, (40, 30)), source="x")
    assert info == ImageInfo(media_type=media_type, width=40, height=30, format=fmt)


def test_an_animated_gif_is_read_by_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), color) for color in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert validate_image(buffer.getvalue(), source="anim.gif").format == "GIF"


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (HTML_PAGE, "looks like HTML"),
        (b"  <html><body>404</body></html>", "looks like HTML"),
        (b"Patient has a rash on the left forearm.\n", "looks like text"),
        (b'{"error": "forbidden"}', "looks like JSON"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "looks like a PDF"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC"),
        (b"", "is empty"),
        (bytes(range(256)) * 4, "not a recognised image format"),
    ],
)
def test_non_images_are_refused_with_what_they_look_like(data: bytes, looks_like: str) -> None:
    with pytest.raises(ImageInvalidError) as info:
        validate_image(data, source="/data/cases/nejm-0003.jpg")
    assert not isinstance(info.value, ImageTooLargeError)
    assert looks_like in str(info.value)
    assert "/data/cases/nejm-0003.jpg" in str(info.value)
    assert info.value.source == "/data/cases/nejm-0003.jpg"


def test_dicom_is_refused_with_a_pointer_to_export() -> None:
    with pytest.raises(ImageInvalidError, match="DICOM is not supported yet; export a PNG/JPEG"):
        validate_image(dicom_bytes(), source="scan.dcm")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_truncated_files_are_refused(fmt: str) -> None:
    whole = image_bytes(fmt, (64, 64))
    validate_image(whole, source="whole")  # the uncut file is fine, so the cut is what fails
    with pytest.raises(ImageInvalidError, match=rf"image 'cut\.{fmt.lower()}' is a corrupt or truncated {fmt}"):
        validate_image(whole[: len(whole) // 2], source=f"cut.{fmt.lower()}")


def test_a_png_cut_inside_its_header_is_refused() -> None:
    with pytest.raises(ImageInvalidError, match="corrupt"):
        validate_image(image_bytes("PNG")[:20], source="tiny.png")


def test_a_png_with_a_damaged_chunk_is_refused() -> None:
    data = bytearray(image_bytes("PNG", (64, 64)))
    data[len(data) // 2] ^= 0xFF  # inside IDAT: the CRC no longer matches
    with pytest.raises(ImageInvalidError, match="corrupt or truncated PNG"):
        validate_image(bytes(data), source="flipped.png")


def test_a_png_with_a_wrong_checksum_is_refused() -> None:
    # The pixel data is intact and decodes; only verify() checks the data chunk's CRC.
    data = bytearray(image_bytes("PNG"))
    start = data.index(b"IDAT") - 4
    crc_at = start + 8 + int.from_bytes(data[start : start + 4], "big")
    data[crc_at : crc_at + 4] = bytes(4)
    with pytest.raises(ImageInvalidError, match="corrupt or truncated PNG"):
        validate_image(bytes(data), source="crc.png")


def test_byte_limit_is_checked_before_decoding() -> None:
    # Garbage that is too big is "too large", not "not an image": nothing was decoded.
    with pytest.raises(ImageTooLargeError, match="1,001 bytes, over the limit of 1,000"):
        validate_image(b"x" * 1001, source="big", max_bytes=1000)


def test_pixel_limit() -> None:
    data = image_bytes("PNG", (100, 60))
    assert validate_image(data, source="ok", max_pixels=6000).width == 100
    with pytest.raises(ImageTooLargeError, match="100x60 = 6,000 pixels, over the limit of 5,999"):
        validate_image(data, source="wide.png", max_pixels=5999)


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    started = time.perf_counter()
    for side in (9000, 30000):  # under and over Pillow's own bomb error threshold
        with pytest.raises(ImageTooLargeError, match="bomb.png"):
            validate_image(png_header_only(side, side), source="bomb.png")
    assert time.perf_counter() - started < 2.0  # refused from the header, never decoded


def test_tiny_images_are_refused() -> None:
    with pytest.raises(ImageInvalidError, match=r"is 8x40 pixels; images under 16 pixels on a side are refused"):
        validate_image(image_bytes("PNG", (8, 40)), source="icon.png")
    assert validate_image(image_bytes("PNG", (8, 40)), source="icon.png", min_side=8).height == 40


def test_unsupported_raster_formats_are_refused() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, format="ICO")
    with pytest.raises(ImageInvalidError, match="not a recognised image format"):
        validate_image(buffer.getvalue(), source="favicon.ico")


def test_credentials_never_reach_the_message() -> None:
    source = "https://alice:s3cret@img.test/a.png?id=IC20240111&token=abc123&X-Amz-Signature=deadbeef"
    with pytest.raises(ImageInvalidError) as info:
        validate_image(HTML_PAGE, source=source)
    text = str(info.value)
    for secret in ("alice", "s3cret", "abc123", "deadbeef"):
        assert secret not in text and secret not in info.value.source
    assert "https://img.test/a.png?id=IC20240111&token=***&X-Amz-Signature=***" in text
