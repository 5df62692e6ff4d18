"""`clinicflow image fetch|read|triage` as a user runs them: real processes, real image files, the real store, and
tiny random-weight image models built in the test session (they prove the path, not the medicine)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.clinicflow.test_cli import clinicflow


def write_png(path: Path, size: tuple[int, int] = (64, 48), shade: int = 0) -> Path:
    from PIL import Image

    image = Image.new("RGB", size)
    image.putdata([((x * 4 + shade) % 256, (y * 5) % 256, 128) for y in range(size[1]) for x in range(size[0])])
    image.save(path, format="PNG")
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_stores_a_local_png_once_and_prints_its_reference(tmp_path: Path) -> None:
    png = write_png(tmp_path / "rash.png")
    digest = sha256_of(png)
    first = clinicflow("image", "fetch", str(png), cache_dir=tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    assert digest in first.stdout and "image/png" in first.stdout and "64x48" in first.stdout
    assert "fetched" in first.stdout and "from the cache" not in first.stdout
    stored = [p for p in (tmp_path / "cache" / "images").rglob("*") if p.is_file() and digest in p.name]
    assert [p.read_bytes() for p in stored] == [png.read_bytes()]  # kept by digest under the cache dir

    again = clinicflow("image", "fetch", str(png), "--json", cache_dir=tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    ref = json.loads(again.stdout)
    assert ref["sha256"] == digest and ref["fetched"] is False  # served from the cache, not read again
    assert Path(ref["path"]) == stored[0]
    assert ref["source"] == str(png.resolve()) and ref["size"] == png.stat().st_size
    assert (ref["width"], ref["height"], ref["media_type"]) == (64, 48, "image/png")


def test_fetch_of_a_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "scan.png"
    done = clinicflow("image", "fetch", str(missing), cache_dir=tmp_path)
    assert done.returncode == 1
    assert "scan.png" in done.stderr and "Traceback" not in done.stderr


def test_read_without_an_imaging_spec_says_which_spec_to_set(tmp_path: Path) -> None:
    png = write_png(tmp_path / "cxr.png")
    done = clinicflow("image", "read", str(png), cache_dir=tmp_path)
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "--imaging" in message and "CLINICFLOW_MODELS__IMAGING" in message
    assert "hf:google/medgemma-4b-it" in message and "openai:google/medgemma-4b-it@http" in message
    assert "Traceback" not in done.stderr


def test_read_of_a_corrupt_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken-scan.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not the rest of a PNG" * 4)
    # A spec that would fail if it were ever used: the image is checked before any model is built.
    done = clinicflow("image", "read", str(bad), "--imaging", "openai:reader@http://127.0.0.1:9/v1", cache_dir=tmp_path)
    assert done.returncode == 1
    assert "broken-scan.png" in done.stderr and "Traceback" not in done.stderr
    assert not list((tmp_path / "images").glob("objects/*/*"))  # nothing invalid was stored


def test_read_with_the_embedded_model_is_refused_clearly(tmp_path: Path) -> None:
    png = write_png(tmp_path / "cxr.png")
    done = clinicflow("image", "read", str(png), "--imaging", "embedded", cache_dir=tmp_path)
    assert done.returncode == 1
    assert "hf:google/medgemma-4b-it" in " ".join(done.stderr.split()) and "Traceback" not in done.stderr


def test_read_an_unknown_modality_lists_the_known_ones(tmp_path: Path) -> None:
    png = write_png(tmp_path / "cxr.png")
    done = clinicflow("image", "read", str(png), "--imaging", "hf:/x", "--modality", "xray", cache_dir=tmp_path)
    assert done.returncode == 2 and "chest_xray" in done.stderr and "dermatology" in done.stderr


@pytest.mark.slow
def test_read_runs_the_tiny_image_model_end_to_end(tmp_path: Path, tiny_image_model_dir: Path) -> None:
    png = write_png(tmp_path / "lesion.png")
    done = clinicflow("image", "read", str(png), "--imaging", f"hf:{tiny_image_model_dir}?device=cpu",
                      "--modality", "dermatology", "--question", "Is the border irregular?", "--json",
                      cache_dir=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert answer["image"]["sha256"] == sha256_of(png)
    read = answer["read"]
    assert read["modality"] == "dermatology" and read["image_id"] == "image-1"
    # The random weights answer nonsense, but real tokens went in (image tokens among them) and came out.
    assert read["calls"] >= 1 and read["input_tokens"] > 0 and read["output_tokens"] > 0
    assert read["findings"] is not None or read["degraded"] is True


@pytest.mark.slow
def test_triage_gives_probabilities_over_the_labels(tmp_path: Path, tiny_siglip_dir: Path) -> None:
    png = write_png(tmp_path / "lesion.png")
    done = clinicflow("image", "triage", str(png), "--triage", f"hf:{tiny_siglip_dir}?device=cpu",
                      "--label", "melanoma", "--label", "benign naevus", "--json", cache_dir=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    scores = answer["scores"]
    assert sorted(s["label"] for s in scores) == ["benign naevus", "melanoma"]
    assert all(0.0 <= s["probability"] <= 1.0 for s in scores)
    assert sum(s["probability"] for s in scores) == pytest.approx(1.0, abs=1e-4)
    assert answer["image"]["sha256"] == sha256_of(png)

    table = clinicflow("image", "triage", str(png), "--triage", f"hf:{tiny_siglip_dir}?device=cpu",
                       "--label", "melanoma", "--label", "benign naevus", cache_dir=tmp_path, timeout=600)
    assert table.returncode == 0 and "melanoma" in table.stdout and "not a diagnosis" in table.stdout


def test_triage_needs_a_spec_and_two_labels(tmp_path: Path) -> None:
    png = write_png(tmp_path / "lesion.png")
    no_spec = clinicflow("image", "triage", str(png), "--label", "a", "--label", "b", cache_dir=tmp_path)
    assert no_spec.returncode == 2 and "hf:google/medsiglip-448" in " ".join(no_spec.stderr.split())
    one_label = clinicflow("image", "triage", str(png), "--triage", "hf:/x", "--label", "a", cache_dir=tmp_path)
    assert one_label.returncode == 2 and "two" in one_label.stderr and "Traceback" not in one_label.stderr


def test_read_against_a_server_that_is_down_fails_naming_the_image(tmp_path: Path) -> None:
    from tests.clinicflow.test_cli import _closed_port

    png = write_png(tmp_path / "fundus.png")
    done = clinicflow("image", "read", str(png), "--imaging", f"openai:reader@http://127.0.0.1:{_closed_port()}/v1",
                      cache_dir=tmp_path, extra_env={"CLINICFLOW_MAX_RETRIES": "0"})
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert "fundus.png" in message and "127.0.0.1" in message and "Traceback" not in done.stderr


def test_models_shows_the_imaging_role_and_triage(tmp_path: Path) -> None:
    default = clinicflow("models", cache_dir=tmp_path)
    assert default.returncode == 0, default.stderr
    rows = {line.split("│")[1].strip(): line for line in default.stdout.splitlines() if line.count("│") >= 3}
    assert "none" in rows["imaging"] and "no image reader" in rows["imaging"]
    assert "none" in rows["triage"]

    chosen = clinicflow("models", "--imaging", "openai:google/medgemma-4b-it@http://gpu-box:8000/v1",
                        "--triage", "hf:google/medsiglip-448", cache_dir=tmp_path)
    assert chosen.returncode == 0, chosen.stderr
    assert "gpu-box:8000/v1/chat/completions" in chosen.stdout and "google/medsiglip-448" in chosen.stdout

    refused = clinicflow("models", "--imaging", "embedded", cache_dir=tmp_path)
    assert "text-only" in refused.stdout
