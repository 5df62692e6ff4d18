"""Images through `clinicflow consult` and `clinicflow bench run`: real processes, real image files in the real
store, every model role (the image reader too) on the scripted OpenAI-compatible server of `benchmarks/` on
127.0.0.1, so a whole consultation takes seconds. The scripted reader answers nonsense: these tests check what the
command line wires (images attached, settings, statuses, warnings), not what is seen in the image."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clinicflow.scripted_server import roles_on, run
from tests.clinicflow.test_image_cli import sha256_of, write_png


def test_consult_attaches_an_image_to_a_demo_case_and_reads_it_at_start(tmp_path: Path, server_url: str) -> None:
    png = write_png(tmp_path / "chest.png")
    out = tmp_path / "out"
    done = run("consult", "--case", "demo:chest-pain", *roles_on(server_url), "--image", str(png),
               "--imaging", f"openai:scripted-reader@{server_url}", "--image-setting", "start",
               "--max-turns", "2", "--checkpoint-db", ":memory:", "--out", str(out), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    transcript = json.loads((out / "transcript.json").read_text())
    images = transcript["images"]
    assert images["setting"] == "start"
    assert [ref["sha256"] for ref in images["refs"]] == [sha256_of(png)]
    assert images["refs"][0]["source"] == str(png.resolve())
    assert len(images["reads"]) == 1 and images["status"] in ("read", "failed")
    assert transcript["models"]["imaging"] == f"openai:scripted-reader@{server_url}"
    # The end panel names the image by digest and shows the intake read with what it found.
    summary = " ".join(done.stdout.split())
    assert "Images:" in summary and sha256_of(png)[:12] in summary
    assert f"image-1 (intake, {images['reads'][0]['status']})" in summary
    # Only references reach the transcript, never the bytes.
    assert "base64" not in (out / "transcript.json").read_text()


def test_an_imaging_entry_is_streamed_with_its_own_label() -> None:
    from clinicflow import cli

    with cli.console.capture() as captured:
        cli._print_entry({"turn": 3, "role": "doctor", "action": "image", "text": "Is there a pneumothorax?"})
        cli._print_entry({"turn": 3, "role": "imaging", "text": "image-1: no pneumothorax; clear costophrenic angles.",
                          "output_tokens": 41, "seconds": 2.5, "degraded": False})
    shown = captured.get()
    assert "Doctor · turn 3 · image" in shown
    assert "Imaging (41 tok, 2.5s)" in shown and "clear costophrenic angles" in shown


def test_consult_without_a_reader_marks_the_image_unread(tmp_path: Path, server_url: str) -> None:
    png = write_png(tmp_path / "rash.png")
    out = tmp_path / "out"
    done = run("consult", "--case", "demo:chest-pain", *roles_on(server_url), "--image", str(png),
               "--max-turns", "1", "--checkpoint-db", ":memory:", "--out", str(out), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    images = json.loads((out / "transcript.json").read_text())["images"]
    assert images["status"] == "no_reader" and images["reads"] == [] and len(images["refs"]) == 1
    shown = " ".join(done.stdout.split())
    assert "images will be marked no_reader" in shown and "not read (no image reader: set --imaging)" in shown


def test_consult_with_a_missing_image_says_so(tmp_path: Path, server_url: str) -> None:
    out = tmp_path / "out"
    done = run("consult", "--case", "demo:chest-pain", *roles_on(server_url), "--image", str(tmp_path / "gone.png"),
               "--imaging", f"openai:scripted-reader@{server_url}", "--max-turns", "1",
               "--checkpoint-db", ":memory:", "--out", str(out), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    images = json.loads((out / "transcript.json").read_text())["images"]
    assert images["status"] == "unavailable" and "gone.png" in " ".join(images["missing"])
    assert "gone.png" in done.stdout


def test_consult_refuses_the_embedded_model_as_image_reader(tmp_path: Path, server_url: str) -> None:
    png = write_png(tmp_path / "chest.png")
    done = run("consult", "--case", "demo:chest-pain", *roles_on(server_url), "--image", str(png),
               "--imaging", "embedded", "--checkpoint-db", ":memory:", tmp_path=tmp_path)
    assert done.returncode == 1
    assert "hf:google/medgemma-4b-it" in " ".join(done.stderr.split()) and "Traceback" not in done.stderr


def _nejm_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "image_url": "https://csvc.nejm.org/ContentServer/images?id=IC20240111",
        "question": "A 40-year-old woman has an itchy rash on her shins. What is the most likely diagnosis?",
        "patient_info": "You are a 40-year-old woman with an itchy rash on your shins for three months.",
        "physical_exams": "Skin: yellow-brown atrophic plaques on both shins. Glucose: 210 mg/dL.",
        "answers": [
            {"text": "Erythema nodosum", "correct": False},
            {"text": "Necrobiosis lipoidica", "correct": True},
            {"text": "Pretibial myxedema", "correct": False},
        ],
    }
    path = folder / "agentclinic_nejm.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def test_bench_run_reads_a_nejm_image_from_the_image_dir_at_start(tmp_path: Path, server_url: str) -> None:
    data = tmp_path / "agentclinic"
    _nejm_file(data)
    images = tmp_path / "nejm-images"
    images.mkdir()
    png = write_png(images / "IC20240111.png")
    run_dir = tmp_path / "run"
    done = run("bench", "run", "--dataset", "nejm", "--data-dir", str(data), *roles_on(server_url),
               "--imaging", f"openai:scripted-reader@{server_url}", "--image-dir", str(images),
               "--image-setting", "start", "--max-turns", "2", "--no-report", "--run-dir", str(run_dir),
               tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["image_setting"] == "start"
    assert config["config"]["models"]["imaging"] == f"openai:scripted-reader@{server_url}"
    assert "text-only" not in done.stderr and "no_reader" not in done.stderr  # nothing to warn about
    [result] = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert result["status"] == "ok", result
    assert result["image_status"] in ("read", "failed") and result["image_reads"] == 1
    transcript = json.loads(next((run_dir / "transcripts").glob("*.json")).read_text())
    assert [ref["sha256"] for ref in transcript["images"]["refs"]] == [sha256_of(png)]


def test_bench_run_warns_when_nejm_images_will_not_be_read(tmp_path: Path, server_url: str) -> None:
    data = tmp_path / "agentclinic"
    _nejm_file(data)
    run_dir = tmp_path / "run"
    # No reader, no image folder and no downloads: both warnings, and the attempt says why the image went unseen.
    done = run("bench", "run", "--dataset", "nejm", "--data-dir", str(data), *roles_on(server_url),
               "--no-download", "--max-turns", "1", "--no-report", "--run-dir", str(run_dir), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    warning = " ".join(done.stderr.split())
    assert "without an image reader (--imaging)" in warning and "marked no_reader" in warning
    assert "--no-download" in warning and "marked unavailable" in warning
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["image_setting"] == "request" and "imaging" not in config["config"]["models"]
    [result] = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert result["image_status"] == "unavailable"
    assert "Images: 1 unavailable; accuracy without unavailable images -" in " ".join(done.stdout.split())


def test_bench_run_on_text_cases_says_nothing_about_images(tmp_path: Path, server_url: str) -> None:
    run_dir = tmp_path / "run"
    done = run("bench", "run", "--dataset", "demo", "--cases", "0", *roles_on(server_url), "--max-turns", "1",
               "--no-report", "--run-dir", str(run_dir), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "image" not in done.stderr.lower()
    [result] = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert result["image_status"] is None


def test_a_resumed_consultation_keeps_its_images_and_reader(tmp_path: Path, server_url: str) -> None:
    from tests.clinicflow.test_cli import _closed_port

    png = write_png(tmp_path / "fundus.png")
    db = tmp_path / "ck.sqlite"
    reader = f"openai:scripted-reader@{server_url}"
    roles = roles_on(server_url)
    roles[roles.index("--patient") + 1] = f"openai:patient@http://127.0.0.1:{_closed_port()}/v1"
    first = run("consult", "--case", "demo:chest-pain", *roles, "--image", str(png), "--imaging", reader,
                "--image-setting", "start", "--max-turns", "2", "--checkpoint-db", str(db), tmp_path=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr  # the patient's server is down
    thread = first.stderr.split("--resume", 1)[1].split()[0]

    # Neither the image nor the reader is named again: both come back from the checkpoint.
    out = tmp_path / "out"
    second = run("consult", "--resume", thread, "--patient", f"openai:scripted-patient@{server_url}",
                 "--checkpoint-db", str(db), "--out", str(out), tmp_path=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    transcript = json.loads((out / "transcript.json").read_text())
    assert transcript["models"]["imaging"] == reader
    images = transcript["images"]
    assert images["setting"] == "start" and [r["sha256"] for r in images["refs"]] == [sha256_of(png)]
    assert len(images["reads"]) == 1  # read once, at the first intake; not again on resume
