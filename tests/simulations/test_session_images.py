"""Consultations with images through ``run_consultation``: extra image sources, resume with the same images, and
checkpoints that hold references and digests but never image bytes."""

from __future__ import annotations

import base64
import hashlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from graphs.checkpointers import open_checkpointer
from simulations.cases import get_demo_case
from simulations.session import ConsultationSetup, run_consultation, saved_origin
from tests.simulations.bench.fakes import FINDINGS, ImagingFake, RoleFake

SPECS = {"reasoning": "fake:role", "patient": "fake:role", "measurement": "fake:role", "judge": "fake:role",
         "imaging": "fake:imaging"}
DIAGNOSIS = "Acute inferior myocardial infarction"


def _stored_values(db: Path) -> bytes:
    """Every value of every row the checkpointer stored (its serialised checkpoints and writes).

    Rows, not the raw file: SQLite may write stale heap memory into the unused part of a page, so the file can
    hold fragments of anything the process once had in memory without any checkpoint holding them.
    """
    with sqlite3.connect(db) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return b"\n".join(value if isinstance(value, bytes) else str(value).encode()
                          for table in tables for row in connection.execute(f'SELECT * FROM "{table}"')
                          for value in row)


def _photo(path: Path) -> Path:
    Image.new("RGB", (40, 40), (90, 140, 200)).save(path, format="PNG")
    return path


def _setup(tmp_path: Path, script: tuple[tuple[str, str], ...], *, setting: str = "request",
           sources: list[str] | None = None, imaging: ImagingFake | None = None) -> ConsultationSetup:
    from tools.images import ImageStore

    role = RoleFake(diagnosis=DIAGNOSIS, script=script)
    models: dict[str, Any] = dict.fromkeys(("reasoning", "patient", "measurement", "judge"), role)
    models["imaging"] = imaging if imaging is not None else ImagingFake()
    return ConsultationSetup(case=get_demo_case("demo:chest-pain"), models=models, specs=SPECS, max_turns=6,
                             image_store=ImageStore(tmp_path / "cache"), image_setting=setting,  # type: ignore[arg-type]
                             image_sources=sources if sources is not None else [str(tmp_path / "ecg.png")])


async def test_an_extra_image_source_is_read_at_start_for_a_case_without_images(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "ecg.png")
    setup = _setup(tmp_path, (("diagnose", DIAGNOSIS),), setting="start")
    async with open_checkpointer(None) as saver:
        transcript = await run_consultation(setup, checkpointer=saver, thread_id="img-1")
    images = transcript["images"]
    assert images["status"] == "read" and images["setting"] == "start"
    assert images["refs"][0]["source"] == str(photo) and images["refs"][0]["id"] == "image-1"
    assert setup.models["imaging"].digests == [hashlib.sha256(photo.read_bytes()).hexdigest()]
    assert transcript["totals"]["per_role"]["imaging"]["calls"] == 1


async def test_a_case_without_images_has_no_image_status_and_no_image_action(tmp_path: Path) -> None:
    setup = _setup(tmp_path, (("image", "Show me the X-ray"), ("diagnose", DIAGNOSIS)), sources=[])
    async with open_checkpointer(None) as saver:
        transcript = await run_consultation(setup, checkpointer=saver, thread_id="img-none")
    assert transcript["images"]["status"] is None and transcript["images"]["refs"] == []
    assert setup.models["imaging"].digests == []


async def test_resume_keeps_the_same_images_and_checkpoints_hold_no_image_bytes(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "ecg.png")
    db = tmp_path / "ck.sqlite"
    script = (("image", "Is there ST elevation?"), ("ask", "Where is the pain?"), ("ask", "Since when?"),
              ("diagnose", DIAGNOSIS))

    class Crash(Exception):
        pass

    def crash_after_the_read(entry: dict) -> None:
        if entry["role"] == "imaging":
            raise Crash

    first = _setup(tmp_path, script)
    async with open_checkpointer(db) as saver:
        with pytest.raises(Crash):
            await run_consultation(first, checkpointer=saver, thread_id="img-2", on_entry=crash_after_the_read)
    assert len(first.models["imaging"].digests) == 1
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("ck.sqlite*"))
    assert digest.encode() in stored  # the checkpoint holds the reference...
    for marker in (photo.read_bytes()[:64], base64.b64encode(photo.read_bytes())[:64]):
        assert marker not in stored  # ...and never the image, raw or encoded

    # A new process: the image cache lost its copy and the user's source list is not given again; the origin
    # in the checkpoint names the source, which is stored again with the same digest.
    shutil.rmtree(tmp_path / "cache")
    again = _setup(tmp_path, script, sources=[], imaging=ImagingFake())  # the doctor goes on from its turn 2
    async with open_checkpointer(db) as saver:
        origin = await saved_origin(saver, "img-2")
        assert origin is not None and origin["images"]["sources"] == [str(photo)]
        assert origin["images"]["setting"] == "request" and origin["images"]["missing"] == []
        transcript = await run_consultation(again, checkpointer=saver, thread_id="img-2", resume=True)
    assert again.models["imaging"].digests == []  # the read was not made twice
    images = transcript["images"]
    assert images["status"] == "read" and [r["sha256"] for r in images["refs"]] == [digest]
    assert [r["question"] for r in images["reads"]] == ["Is there ST elevation?"]
    doctor = [e for e in transcript["dialogue"] if e["role"] == "doctor"]
    assert [e["action"] for e in doctor] == ["image", "ask", "ask", "diagnose"]
    assert FINDINGS["impression"] in next(e["text"] for e in transcript["dialogue"] if e["role"] == "imaging")
