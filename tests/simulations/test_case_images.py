"""Case images: how a case's file is found in an image folder, and how its images are stored or reported missing."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from simulations.case_images import image_status, local_image_for, nejm_image_id, prepare_case_images
from simulations.cases import Case, load_cases
from tools.images import ImageStore

NEJM_URL = "https://csvc.nejm.org/ContentServer/images?id=IC20240111&width=1500&height=4000"


def closed_port_url(image_id: str = "IC20990101") -> str:
    """An image URL on 127.0.0.1 whose port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ContentServer/images?id={image_id}&width=1500"


def write_png(path: Path, color: tuple[int, int, int] = (180, 40, 40), size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path, format="PNG")
    return path


def nejm_cases(tmp_path: Path, write_lines: Callable[..., Path], *records: dict[str, Any]) -> list[Case]:
    return load_cases(write_lines(tmp_path / "agentclinic_nejm.jsonl", list(records)), dataset="nejm").cases


@pytest.fixture
def three_cases(tmp_path: Path, write_lines, nejm_record) -> list[Case]:
    return nejm_cases(tmp_path, write_lines, nejm_record(image_url=NEJM_URL),
                      nejm_record(image_url=NEJM_URL.replace("IC20240111", "IC20240118")),
                      nejm_record(image_url=NEJM_URL.replace("IC20240111", "IC20240125")))


def test_nejm_image_id_comes_from_the_url_id_parameter() -> None:
    assert nejm_image_id(NEJM_URL) == "IC20240111"
    assert nejm_image_id("https://example.org/image.jpg") is None
    assert nejm_image_id("https://example.org/x?id=../../etc/passwd") is None  # never a path outside the folder
    assert nejm_image_id(None) is None


def test_local_image_naming_rules_in_order(tmp_path: Path, three_cases: list[Case]) -> None:
    folder = tmp_path / "images"
    first, second, third = three_cases
    assert first.id == "nejm:0000"
    assert local_image_for(first, folder) is None  # no folder at all: nothing, no error
    folder.mkdir()
    assert local_image_for(first, folder) is None
    # By index, then by NEJM image id, then by case id: the earlier rule wins when several files exist.
    by_index = write_png(folder / "0.bmp")
    assert local_image_for(first, folder) == by_index
    by_nejm_id = write_png(folder / "IC20240111.JPG")  # suffixes match whatever their case
    assert local_image_for(first, folder) == by_nejm_id
    by_case_id = write_png(folder / "nejm-0000.webp")
    assert local_image_for(first, folder) == by_case_id
    # Among suffixes of one name, the order of IMAGE_SUFFIXES decides (.jpg before .png).
    write_png(folder / "ic20240118.png")
    jpg = write_png(folder / "ic20240118.jpg")
    assert local_image_for(second, folder) == jpg
    # Other files never match: a text file, another case's index, a folder named like an image.
    (folder / "2.txt").write_text("not an image")
    (folder / "2.png").mkdir()
    assert local_image_for(third, folder) is None
    assert local_image_for(third, folder.parent / "elsewhere") is None


async def test_a_local_image_is_stored_and_wins_over_the_url(tmp_path: Path, write_lines, nejm_record) -> None:
    (case,) = nejm_cases(tmp_path, write_lines, nejm_record(image_url=closed_port_url("IC20990101")))
    png = write_png(tmp_path / "images" / "IC20990101.png")
    store = ImageStore(tmp_path / "cache")
    images = await prepare_case_images(case, store, image_dir=tmp_path / "images")
    assert images.expected and images.missing == []
    (ref,) = images.refs
    assert ref["id"] == "image-1" and ref["sha256"] == hashlib.sha256(png.read_bytes()).hexdigest()
    assert ref["media_type"] == "image/png" and (ref["width"], ref["height"]) == (32, 32)
    assert store.load(ref) == png.read_bytes()
    assert image_status(images, [], setting="request", has_reader=True) == "not_requested"


async def test_an_unreachable_url_is_a_missing_reason_naming_it(tmp_path: Path, write_lines, nejm_record) -> None:
    url = closed_port_url()
    (case,) = nejm_cases(tmp_path, write_lines, nejm_record(image_url=url))
    images = await prepare_case_images(case, ImageStore(tmp_path / "cache", timeout_s=5), image_dir=tmp_path / "none")
    assert images.expected and images.refs == []
    (reason,) = images.missing
    assert reason.startswith("image-1: ") and url in reason and str(tmp_path / "none") in reason
    assert image_status(images, [], setting="start", has_reader=True) == "unavailable"


async def test_download_disabled_and_no_store_are_missing_reasons(tmp_path: Path, write_lines, nejm_record) -> None:
    (case,) = nejm_cases(tmp_path, write_lines, nejm_record(image_url=NEJM_URL))
    store = ImageStore(tmp_path / "cache")
    off = await prepare_case_images(case, store, download=False)
    assert off.expected and off.refs == [] and off.missing == [f"image-1: {NEJM_URL}: download disabled"]
    assert store.fetches == 0  # nothing was fetched
    none = await prepare_case_images(case, None)
    assert none.refs == [] and "no image store" in none.missing[0] and NEJM_URL in none.missing[0]


async def test_a_corrupt_local_file_falls_back_to_the_url_and_both_reasons_are_kept(
    tmp_path: Path, write_lines, nejm_record
) -> None:
    url = closed_port_url("IC20990102")
    (case,) = nejm_cases(tmp_path, write_lines, nejm_record(image_url=url))
    bad = tmp_path / "images" / "nejm-0000.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"<html>not an image</html>")
    images = await prepare_case_images(case, ImageStore(tmp_path / "cache", timeout_s=5), image_dir=bad.parent)
    (reason,) = images.missing
    assert str(bad) in reason and url in reason and reason.startswith("image-1: ")


async def test_extra_sources_follow_the_case_image_and_a_case_without_image_expects_none(
    tmp_path: Path, gout_case: Case, write_lines, nejm_record
) -> None:
    store = ImageStore(tmp_path / "cache")
    nothing = await prepare_case_images(gout_case, store, image_dir=tmp_path)
    assert (nothing.expected, nothing.refs, nothing.missing) == (False, [], [])
    assert image_status(nothing, [], setting="request", has_reader=True) is None

    photo = write_png(tmp_path / "photo.png", (10, 200, 10))
    extra = await prepare_case_images(gout_case, store, extra_sources=[str(photo), str(tmp_path / "gone.png")])
    assert [r["id"] for r in extra.refs] == ["image-1"] and extra.refs[0]["source"].endswith("photo.png")
    assert len(extra.missing) == 1 and extra.missing[0].startswith("image-2: ") and "gone.png" in extra.missing[0]

    (case,) = nejm_cases(tmp_path, write_lines, nejm_record(image_url=closed_port_url("IC1")))
    write_png(tmp_path / "dir" / "0.png")
    both = await prepare_case_images(case, store, image_dir=tmp_path / "dir", extra_sources=[str(photo)])
    assert [r["id"] for r in both.refs] == ["image-1", "image-2"] and both.missing == []


def test_image_status_words() -> None:
    from simulations.case_images import CaseImages

    ref: Any = {"id": "image-1", "source": "/x.png", "sha256": "0" * 64, "media_type": "image/png", "width": 32,
                "height": 32, "size": 10}
    have = CaseImages(refs=[ref], expected=True)
    read = {"turn": 1, "image_id": "image-1", "status": "read", "sources": [], "question": None}
    failed = {**read, "status": "failed"}
    assert image_status(have, [], setting="request", has_reader=False) == "no_reader"
    assert image_status(have, [failed, read], setting="request", has_reader=True) == "read"
    assert image_status(have, [failed], setting="request", has_reader=True) == "failed"
    assert image_status(have, [], setting="start", has_reader=True) == "failed"  # due at intake, never made
    assert image_status(have, [], setting="request", has_reader=True) == "not_requested"


async def test_every_shared_nejm_case_maps_its_image_id(tmp_path: Path, agentclinic_file) -> None:
    path = agentclinic_file("agentclinic_nejm.jsonl")
    cases = load_cases(path, dataset="nejm").cases
    assert len(cases) == 15
    ids = [nejm_image_id(case.image_url) for case in cases]
    assert all(ids) and len(set(ids)) == len(ids), ids
    folder = tmp_path / "images"
    # Each case's figure saved under its NEJM id, one colour per case so every file has its own digest.
    for n, image_id in enumerate(ids):
        write_png(folder / f"{image_id}.jpg", (n * 16, 255 - n * 16, 128))
    store = ImageStore(tmp_path / "cache")
    for case, image_id in zip(cases, ids, strict=True):
        assert local_image_for(case, folder) == folder / f"{image_id}.jpg"
        images = await prepare_case_images(case, store, image_dir=folder, download=False)
        assert images.missing == [] and images.refs[0]["source"].endswith(f"{image_id}.jpg")
    assert store.fetches == len(cases)
    line = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert nejm_image_id(line["image_url"]) == ids[0]
