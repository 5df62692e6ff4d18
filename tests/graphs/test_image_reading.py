"""StoreImageLookup over a real ImageStore and the real ImageReader (its chat model scripted), and a consultation
checkpointed to SQLite that must never hold the image's bytes."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from agents.doctor import Doctor
from agents.imaging import ImageReader, ImageTriage
from graphs import ImageLookup, StoreImageLookup, build_consultation_graph, open_checkpointer, recursion_limit_for
from graphs.image_lookup import NO_IMAGE
from tests.doctor.fakes import scripted
from tests.graphs.helpers import TableEnvironment, decision
from tools.images import ImageStore

FINDINGS = json.dumps({"observations": ["an enlarged, globular cardiac silhouette"],
                       "impression": "pericardial effusion", "confidence": 0.7,
                       "limitations": ["no lateral view"]})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_bytes(seed: int = 7, size: tuple[int, int] = (64, 48)) -> bytes:
    """A noisy PNG: its bytes (and their base64) are distinctive enough to search a database for."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", size, bytes(rng.randrange(256) for _ in range(size[0] * size[1] * 3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class FakeClassifier:
    """A zero-shot classifier that favours the first label and records what it scored."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, list[str]]] = []

    async def aclassify(self, image: bytes, labels: Sequence[str]) -> list[tuple[str, float]]:
        self.calls.append((image, list(labels)))
        return [(label, 0.8 if i == 0 else 0.2 / (len(labels) - 1)) for i, label in enumerate(labels)]


@pytest.fixture
def stored(tmp_path: Path) -> tuple[ImageStore, list, list[bytes]]:
    """Two real PNGs in a real store, added from files whose names would give a diagnosis away."""
    store = ImageStore(tmp_path / "images")
    datas = [png_bytes(1), png_bytes(2)]
    refs = []
    for i, data in enumerate(datas, start=1):
        path = tmp_path / f"pericardial-effusion-{i}.png"
        path.write_bytes(data)
        refs.append(store.add_bytes(data, source=str(path), image_id=f"image-{i}"))
    return store, refs, datas


def image_blocks(model) -> list[dict]:
    return [block for messages, _ in model.calls for m in messages if isinstance(m.content, list)
            for block in m.content if isinstance(block, dict) and block.get("type") == "image"]


async def test_a_read_loads_the_bytes_sends_them_to_the_reader_and_cites_the_digest(stored) -> None:
    store, refs, datas = stored
    model = scripted(FINDINGS)
    lookup = StoreImageLookup(store, refs, ImageReader(model), modality="chest_xray")
    assert isinstance(lookup, ImageLookup)
    reply = await lookup.read(None, "Is the heart enlarged?")
    assert (reply.status, reply.image_id, reply.calls, reply.degraded) == ("read", "image-1", 1, False)
    assert reply.sources == [f"image:image-1@sha256:{hashlib.sha256(datas[0]).hexdigest()}"]
    assert reply.text.startswith("image-1: ") and "pericardial effusion" in reply.text
    [block] = image_blocks(model)
    assert base64.b64decode(block["base64"]) == datas[0] and block["mime_type"] == "image/png"
    assert "Is the heart enlarged?" in json.dumps([m.content for m in model.calls[0][0]])


async def test_an_image_is_chosen_by_id_and_an_unknown_id_lists_the_ones_there_are(stored) -> None:
    store, refs, datas = stored
    model = scripted(FINDINGS)
    lookup = StoreImageLookup(store, refs, ImageReader(model))
    assert (await lookup.read("image-2", None)).image_id == "image-2"
    assert base64.b64decode(image_blocks(model)[0]["base64"]) == datas[1]
    unknown = await lookup.read("image-9", None)
    assert unknown.status == "unavailable" and "image-1, image-2" in unknown.text and "'image-9'" in unknown.text


async def test_description_never_shows_the_source(stored) -> None:
    store, refs, _ = stored
    lines = StoreImageLookup(store, refs, None, modality="chest_xray").describe()
    assert lines == ["image-1: chest X-ray, 64x48 pixels", "image-2: chest X-ray, 64x48 pixels"]
    assert "effusion" not in " ".join(lines)


async def test_no_image_no_reader_and_a_damaged_store_are_statuses_not_errors(stored) -> None:
    store, refs, _ = stored
    none = await StoreImageLookup(store, [], ImageReader(scripted()), missing=["image-1: HTTP 404"]).read(None, None)
    assert (none.status, none.image_id) == ("unavailable", None)
    assert none.text == NO_IMAGE  # the reasons are intake findings; they may name a source, the doctor sees none
    assert StoreImageLookup(store, [], None, missing=["image-1: HTTP 404"]).missing() == ["image-1: HTTP 404"]

    no_reader = await StoreImageLookup(store, refs, None).read(None, "Effusion?")
    assert (no_reader.status, no_reader.sources) == ("no_reader", [])
    assert "no image reader is configured" in no_reader.text

    store.path_of(refs[0]).write_bytes(png_bytes(99))
    damaged = await StoreImageLookup(store, refs, ImageReader(scripted(FINDINGS))).read(None, None)
    assert (damaged.status, damaged.sources) == ("failed", [])
    assert "could not be loaded" in damaged.text and "ImageDigestError" in damaged.text
    assert "effusion" not in damaged.text  # the source's file name would give the diagnosis away


async def test_a_failing_model_is_a_failed_read(stored) -> None:
    store, refs, _ = stored
    reply = await StoreImageLookup(store, refs, ImageReader(scripted(TimeoutError("no answer")))).read(None, None)
    assert (reply.status, reply.sources, reply.degraded) == ("failed", [], True)
    assert "no answer" in reply.text


async def test_triage_scores_the_differential_beside_the_read_or_alone(stored) -> None:
    store, refs, datas = stored
    classifier = FakeClassifier()
    lookup = StoreImageLookup(store, refs, ImageReader(scripted(FINDINGS)), modality="chest_xray",
                              triage=ImageTriage(classifier, model="hf:google/medsiglip-448"))
    reply = await lookup.read(None, None, differential=["Pericardial effusion", "Cardiomyopathy"])
    assert classifier.calls[0][0] == datas[0] and len(classifier.calls[0][1]) == 2
    assert reply.status == "read" and "impression" in reply.text.lower() and "Zero-shot triage" in reply.text
    assert "Pericardial effusion 0.80" in reply.text and reply.calls == 2

    alone = StoreImageLookup(store, refs, None, triage=ImageTriage(FakeClassifier(), model="medsiglip"))
    scored = await alone.read(None, None, differential=["Pericardial effusion", "Cardiomyopathy"])
    assert (scored.status, scored.model, scored.calls) == ("read", "medsiglip", 1)
    assert (await alone.read(None, None)).status == "no_reader"


def test_repeated_image_ids_are_refused(stored) -> None:
    store, refs, _ = stored
    with pytest.raises(ValueError, match="image-1"):
        StoreImageLookup(store, [refs[0], refs[0]], None)


def _stored_values(db: Path) -> list[bytes]:
    """Every value of every row of every table in the SQLite file, as bytes."""
    values: list[bytes] = []
    with sqlite3.connect(db) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                values += [v if isinstance(v, bytes) else str(v).encode() for v in row if v is not None]
    return values


@pytest.mark.parametrize("setting", ["request", "start"])
async def test_no_image_bytes_in_any_checkpoint(tmp_path: Path, stored, setting: str) -> None:
    store, refs, datas = stored
    data, digest = datas[0], refs[0]["sha256"]
    reader_model = scripted(FINDINGS)
    lookup = StoreImageLookup(store, refs[:1], ImageReader(reader_model), modality="chest_xray")
    doctor = scripted(decision("image", "Is there an effusion?"), decision("diagnose", "Pericardial effusion"))
    if setting == "start":
        doctor = scripted(decision("diagnose", "Pericardial effusion"))
    db = tmp_path / "checkpoints.sqlite"
    async with open_checkpointer(db) as saver:
        graph = build_consultation_graph(Doctor(doctor), TableEnvironment(), images=lookup, checkpointer=saver)
        config = {"configurable": {"thread_id": "nejm-0001"}, "recursion_limit": recursion_limit_for(4)}
        final = await graph.ainvoke({"case_id": "nejm-0001", "objective": "What is the most likely diagnosis?",
                                     "max_turns": 4, "image_setting": setting}, config)
        history = [snapshot async for snapshot in graph.aget_state_history(config)]
    # The image was really read: the reader's model got the bytes.
    assert base64.b64decode(image_blocks(reader_model)[0]["base64"]) == data
    assert final["image_reads"][0]["status"] == "read" and len(history) >= 3

    values = _stored_values(db)
    assert any(digest.encode() in v for v in values), "the digest is what state keeps"
    encoded = base64.b64encode(data)
    for needle, what in ((data, "raw bytes"), (data[8:200], "a slice of the bytes"), (encoded, "base64"),
                         (encoded[:200], "base64 prefix"), (PNG_SIGNATURE, "PNG signature"),
                         (base64.b64encode(PNG_SIGNATURE)[:10], "PNG signature in base64")):
        assert not any(needle in v for v in values), f"{what} of the image found in the checkpoint database"
    # Only stored rows are searched, not the file's raw pages: SQLite leaves whatever its page buffers held in the
    # unused space of a page, so the raw file can hold stray bytes from process memory that no checkpoint holds.
