"""ImageStore over local files: the content-addressed layout, digests, the index, and refused files."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from tools.images import (
    ImageDigestError,
    ImageInvalidError,
    ImageNotFoundError,
    ImageStore,
    ImageTooLargeError,
)

from . import HTML_PAGE, dicom_bytes, image_bytes


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_a_file_is_stored_under_its_digest(tmp_path: Path) -> None:
    data = image_bytes("JPEG", (48, 32))
    src = write(tmp_path / "cases" / "nejm-0003.jpg", data)
    store = ImageStore(tmp_path / "cache")
    ref = await store.add(src, image_id="image-2")
    digest = hashlib.sha256(data).hexdigest()
    assert ref == {
        "id": "image-2",
        "source": str(src),
        "sha256": digest,
        "media_type": "image/jpeg",
        "width": 48,
        "height": 32,
        "size": len(data),
    }
    assert store.path_of(ref) == tmp_path / "cache" / "objects" / digest[:2] / f"{digest}.jpg"
    assert store.load(ref) == data
    assert store.load(digest) == data and store.load(f"sha256:{digest}") == data
    assert store.fetches == 1
    json.dumps(ref)  # a ref is plain JSON: it can live in graph state and transcripts


async def test_one_read_for_two_adds_and_the_index_survives_a_new_store(tmp_path: Path) -> None:
    src = write(tmp_path / "a.png", image_bytes())
    store = ImageStore(tmp_path / "cache")
    first = await store.add(src)
    second = await store.add(f"file://{src}", image_id="image-9")
    assert store.fetches == 1
    assert second == {**first, "id": "image-9"}
    again = ImageStore(tmp_path / "cache")
    assert await again.add(str(src)) == first
    assert again.fetches == 0


async def test_two_sources_with_the_same_bytes_share_one_object(tmp_path: Path) -> None:
    data = image_bytes()
    store = ImageStore(tmp_path / "cache")
    one = await store.add(write(tmp_path / "one.png", data))
    two = await store.add(write(tmp_path / "two.png", data))
    assert store.fetches == 2 and one["sha256"] == two["sha256"] and one["source"] != two["source"]
    assert len(list((tmp_path / "cache" / "objects").rglob("*.png"))) == 1
    assert len(list((tmp_path / "cache" / "index").rglob("*.json"))) == 2


async def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    src = write(tmp_path / "a.png", image_bytes(seed=1))
    store = ImageStore(tmp_path / "cache")
    before = await store.add(src)
    write(src, image_bytes(seed=2, size=(50, 50)))
    os.utime(src, ns=(os.stat(src).st_atime_ns, os.stat(src).st_mtime_ns + 10_000_000))
    after = await store.add(src)
    assert store.fetches == 2 and after["sha256"] != before["sha256"] and after["width"] == 50


async def test_a_corrupt_object_fails_load_and_is_repaired_by_add(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = image_bytes()
    src = write(tmp_path / "a.png", data)
    store = ImageStore(tmp_path / "cache")
    ref = await store.add(src)
    store.path_of(ref).write_bytes(data[:-1] + b"\x00")
    with pytest.raises(ImageDigestError) as info:
        store.load(ref)
    assert info.value.source == str(src) and str(src) in str(info.value)
    assert info.value.expected == ref["sha256"] and info.value.actual != ref["sha256"]
    with caplog.at_level(logging.WARNING, logger="tools.images"):
        repaired = await store.add(src)
    assert "is corrupt" in caplog.text and str(src) in caplog.text
    assert store.fetches == 2 and repaired == ref and store.load(ref) == data


async def test_a_missing_object_is_refetched(tmp_path: Path) -> None:
    src = write(tmp_path / "a.png", image_bytes())
    store = ImageStore(tmp_path / "cache")
    ref = await store.add(src)
    store.path_of(ref).unlink()
    with pytest.raises(ImageNotFoundError, match="has no stored object"):
        store.load(ref)
    await store.add(src)
    assert store.fetches == 2 and store.load(ref)


async def test_a_damaged_index_entry_means_a_reread(tmp_path: Path) -> None:
    src = write(tmp_path / "a.png", image_bytes())
    store = ImageStore(tmp_path / "cache")
    await store.add(src)
    (entry,) = (tmp_path / "cache" / "index").rglob("*.json")
    entry.write_text("{not json")
    await store.add(src)
    assert store.fetches == 2 and json.loads(entry.read_text())["source"] == str(src)


@pytest.mark.parametrize(
    ("name", "data", "why"),
    [
        ("page.jpg", HTML_PAGE, "looks like HTML"),
        ("notes.png", b"left forearm rash, 3 cm\n", "looks like text"),
        ("empty.png", b"", "is empty"),
        ("truncated.png", image_bytes("PNG", (64, 64))[:900], "corrupt or truncated PNG"),
        ("scan.dcm", dicom_bytes(), "DICOM is not supported yet"),
    ],
)
async def test_files_that_are_not_images_are_refused_by_name(tmp_path: Path, name: str, data: bytes, why: str) -> None:
    src = write(tmp_path / name, data)
    store = ImageStore(tmp_path / "cache")
    with pytest.raises(ImageInvalidError, match=why) as info:
        await store.add(src)
    assert info.value.source == str(src) and f"image {str(src)!r}" in str(info.value)
    assert not (tmp_path / "cache" / "index").exists()  # nothing was filed for a refused image


async def test_limits(tmp_path: Path) -> None:
    src = write(tmp_path / "a.png", image_bytes("PNG", (100, 100)))
    with pytest.raises(ImageTooLargeError, match="over the limit of 1,000"):
        await ImageStore(tmp_path / "cache", max_bytes=1000).add(src)
    with pytest.raises(ImageTooLargeError, match="10,000 pixels"):
        await ImageStore(tmp_path / "cache", max_pixels=9999).add(src)
    with pytest.raises(ImageInvalidError, match="under 101 pixels"):
        await ImageStore(tmp_path / "cache", min_side=101).add(src)
    # Stored under the default limits, the same object is still refused by a stricter store.
    await ImageStore(tmp_path / "cache").add(src)
    strict = ImageStore(tmp_path / "cache", max_pixels=9999)
    with pytest.raises(ImageTooLargeError, match="10,000 pixels"):
        await strict.add(src)
    assert strict.fetches == 0


async def test_a_missing_path_is_not_found(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "cache")
    with pytest.raises(ImageNotFoundError, match=r"was not found: no such file") as info:
        await store.add(tmp_path / "nope.png")
    assert info.value.source == str(tmp_path / "nope.png")
    with pytest.raises(ImageNotFoundError):
        await store.add(f"file://{tmp_path}/nope.png")
    assert store.fetches == 0


async def test_a_deleted_source_is_not_served_from_the_cache(tmp_path: Path) -> None:
    src = write(tmp_path / "a.png", image_bytes())
    store = ImageStore(tmp_path / "cache")
    await store.add(src)
    src.unlink()
    with pytest.raises(ImageNotFoundError):
        await store.add(src)


def test_add_bytes_and_unknown_digests(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "cache")
    data = image_bytes("WEBP")
    ref = store.add_bytes(data, source="upload:https://u:pw@x.test/a?sig=zz", image_id="image-3")
    assert ref["source"] == "upload:https://x.test/a?sig=***" and ref["id"] == "image-3"
    assert store.load(ref) == data and store.path_of(ref).suffix == ".webp" and store.fetches == 0
    with pytest.raises(ImageNotFoundError, match="no stored object"):
        store.load("0" * 64)
    with pytest.raises(ImageNotFoundError, match="not a sha256 hex digest"):
        store.load("../../etc/passwd")
    with pytest.raises(ImageInvalidError, match="upload-2"):
        store.add_bytes(HTML_PAGE, source="upload-2")


async def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "cache")
    for seed in range(3):
        await store.add(write(tmp_path / f"{seed}.png", image_bytes(seed=seed)))
    leftovers = [p for p in stored_files(tmp_path / "cache") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []
    assert len(stored_files(tmp_path / "cache")) == 6


async def test_concurrent_adds_of_one_file_read_it_once(tmp_path: Path) -> None:
    src = write(tmp_path / "a.png", image_bytes())
    store = ImageStore(tmp_path / "cache")
    refs = await asyncio.gather(*(store.add(src, image_id=f"image-{i}") for i in range(8)))
    assert store.fetches == 1 and len({r["sha256"] for r in refs}) == 1
