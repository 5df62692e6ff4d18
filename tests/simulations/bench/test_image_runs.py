"""Benchmark runs of NEJM image cases: both image settings, a missing image, no image model, the answer options kept
from every role but the judge, image reads in results, transcripts, the report and the call cache."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from PIL import Image
from pydantic import Field

from simulations.bench import RunOptions, make_plan, read_run, run_benchmark, write_report
from simulations.bench.records import AttemptResult
from simulations.cases import Case, load_cases
from tests.simulations.bench.fakes import FINDINGS, SPECS, ImagingFake, RoleFake, fake_models

IMAGING_SPEC = "openai:fake-imaging@http://fake-imaging/v1"
DIAGNOSIS = "Necrobiosis lipoidica"
# Distractors no role but the judge may ever see; each is a phrase no prompt would hold by chance.
DISTRACTORS = ["Erythema nodosum migrans variant", "Pretibial myxedema of Graves", "Stasis dermatitis chronica",
               "Sarcoidal granuloma annulare"]


def closed_port_url(image_id: str) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ContentServer/images?id={image_id}&width=1500&height=4000"


def nejm_line(image_id: str) -> dict[str, Any]:
    """A NEJM-shaped case whose image URL points at a closed local port (so only a local file can supply it)."""
    answers = [{"text": text, "correct": False} for text in DISTRACTORS]
    answers.insert(1, {"text": DIAGNOSIS, "correct": True})
    return {
        "image_url": closed_port_url(image_id),
        "question": "A 40-year-old woman has plaques on her shins. What is the most likely diagnosis?",
        "patient_info": "For your role as a patient, you are a 40-year-old woman with diabetes and shin plaques.",
        "physical_exams": "Laboratory studies: - Glucose: 210 mg/dL. Skin: yellow-brown plaques on both shins.",
        "answers": answers,
        "type": ["dermatology"],
    }


@pytest.fixture
def nejm(tmp_path: Path, write_lines) -> tuple[list[Case], Path, Path]:
    """Two NEJM cases (the first with its image in the image folder, the second without), the folder, the image."""
    path = write_lines(tmp_path / "agentclinic_nejm.jsonl", [nejm_line("IC20990101"), nejm_line("IC20990102")])
    cases = load_cases(path, dataset="nejm").cases
    folder = tmp_path / "nejm-images"
    folder.mkdir()
    image = folder / "IC20990101.png"
    Image.new("RGB", (48, 40), (200, 170, 90)).save(image, format="PNG")
    return cases, folder, image


def _models(script: tuple[tuple[str, str], ...] = (), imaging: bool = True,
            diagnosis: str = DIAGNOSIS) -> dict[str, Any]:
    models: dict[str, Any] = fake_models(diagnosis=diagnosis, script=script)
    if imaging:
        models["imaging"] = ImagingFake()
    return models


def _plan(cases: list[Case], setting: str, *, imaging: bool = True):
    specs = {**SPECS, "imaging": IMAGING_SPEC} if imaging else SPECS
    return make_plan(cases, protocol="clinicflow", models=specs, max_turns=6, image_setting=setting)


def _results(run_dir: Path) -> dict[str, AttemptResult]:
    lines = (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return {r.case_id: r for r in (AttemptResult.model_validate_json(line) for line in lines if line.strip())}


def _transcript(run_dir: Path, result: AttemptResult) -> dict[str, Any]:
    assert result.transcript is not None
    return json.loads((run_dir / result.transcript).read_text(encoding="utf-8"))


def _doctor_texts(model: RoleFake) -> list[str]:
    return [text for text, role in zip(model.texts_seen, model.calls, strict=True) if role == "doctor"]


async def test_image_at_start_is_read_at_intake_into_the_doctors_first_call(tmp_path: Path, nejm) -> None:
    cases, folder, image = nejm
    models = _models(script=(("diagnose", DIAGNOSIS),))
    run_dir = tmp_path / "run"
    summary = await run_benchmark(_plan(cases[:1], "start"), run_dir, models, RunOptions(image_dir=folder))
    assert summary.errors == 0
    result = _results(run_dir)[cases[0].id]
    assert result.status == "ok" and result.image_status == "read" and result.image_reads == 1
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    assert models["imaging"].digests == [digest]  # one read, of exactly this image
    assert result.usage["imaging"].calls == 1 and result.usage["imaging"].input_tokens == 300  # counted at intake
    first_call = _doctor_texts(models["reasoning"])[0]
    assert FINDINGS["impression"] in first_call  # the read opened the doctor's context
    transcript = _transcript(run_dir, result)
    images = transcript["images"]
    assert images["setting"] == "start" and images["status"] == "read" and images["missing"] == []
    assert [(r["id"], r["sha256"]) for r in images["refs"]] == [("image-1", digest)]
    assert images["reads"][0]["sources"] == [f"image:image-1@sha256:{digest}"]
    # The run's own image cache holds the image; nothing outside it holds its bytes in any form.
    environment = json.loads((run_dir / "config.json").read_text())["environment"]
    assert environment["image_dir"] == str(folder) and environment["image_cache"] == str(run_dir / "images")
    encoded = base64.b64encode(image.read_bytes()).decode()
    for path in [run_dir / "results.jsonl", *sorted((run_dir / "transcripts").iterdir())]:
        assert encoded[:64] not in path.read_text(encoding="utf-8"), path


async def test_image_on_request_is_read_when_the_doctor_asks_and_only_then(tmp_path: Path, nejm) -> None:
    cases, folder, image = nejm
    question = "Describe the colour and borders of the shin plaques"
    models = _models(script=(("image", question), ("diagnose", DIAGNOSIS)))
    run_dir = tmp_path / "run"
    await run_benchmark(_plan(cases[:1], "request"), run_dir, models, RunOptions(image_dir=folder))
    result = _results(run_dir)[cases[0].id]
    assert result.status == "ok" and result.image_status == "read" and result.image_reads == 1
    imaging: ImagingFake = models["imaging"]
    assert imaging.digests == [hashlib.sha256(image.read_bytes()).hexdigest()] and question in imaging.texts_seen[0]
    first, second = _doctor_texts(models["reasoning"])
    assert FINDINGS["impression"] not in first and FINDINGS["impression"] in second
    transcript = _transcript(run_dir, result)
    (read,) = transcript["images"]["reads"]
    assert read["question"] == question and read["status"] == "read" and read["turn"] == 1
    assert transcript["totals"]["image_requests"] == 1
    assert transcript["totals"]["per_role"]["imaging"]["calls"] == 1
    assert result.usage["imaging"].calls == 1


async def test_a_doctor_who_never_asks_leaves_the_image_not_requested(tmp_path: Path, nejm) -> None:
    cases, folder, _ = nejm
    models = _models()  # ask, test, diagnose: never the image
    await run_benchmark(_plan(cases[:1], "request"), tmp_path / "run", models, RunOptions(image_dir=folder))
    result = _results(tmp_path / "run")[cases[0].id]
    assert result.image_status == "not_requested" and result.image_reads == 0
    assert models["imaging"].digests == []


async def test_a_missing_image_is_marked_unavailable_and_the_attempt_still_runs(tmp_path: Path, nejm) -> None:
    cases, folder, _ = nejm
    models = _models(script=(("diagnose", DIAGNOSIS),))
    run_dir = tmp_path / "run"
    summary = await run_benchmark(_plan(cases[1:], "start"), run_dir, models, RunOptions(image_dir=folder))
    assert summary.errors == 0 and summary.finished == 1
    result = _results(run_dir)[cases[1].id]
    assert result.status == "ok" and result.image_status == "unavailable" and result.image_reads == 0
    assert result.final_diagnosis == DIAGNOSIS and result.correct is True
    assert models["imaging"].digests == []
    transcript = _transcript(run_dir, result)
    (reason,) = transcript["images"]["missing"]
    assert reason.startswith("image-1: ") and "127.0.0.1" in reason and str(folder) in reason
    assert transcript["images"]["status"] == "unavailable" and transcript["images"]["refs"] == []
    # The doctor was told the image could not be had (a finding), rather than running as if there were none.
    assert any(f["source"] == "image" and "unavailable" in f["text"].lower() for f in transcript["findings"])
    page = (run_dir / result.transcript).with_suffix(".md").read_text(encoding="utf-8")
    assert "## Images" in page and "image unavailable" in page


async def test_no_imaging_model_is_no_reader(tmp_path: Path, nejm) -> None:
    cases, folder, _ = nejm
    models = _models(script=(("diagnose", DIAGNOSIS),), imaging=False)
    await run_benchmark(_plan(cases[:1], "start", imaging=False), tmp_path / "run", models,
                        RunOptions(image_dir=folder))
    result = _results(tmp_path / "run")[cases[0].id]
    assert result.status == "ok" and result.image_status == "no_reader"


@pytest.mark.parametrize("setting", ["start", "request"])
async def test_the_answer_options_reach_only_the_judge(tmp_path: Path, nejm, setting: str) -> None:
    cases, folder, _ = nejm
    # A doctor that never names the case's diagnosis itself, so any sight of it must have come from the case.
    guess = "Granulomatous dermatitis"
    opening = (("image", "What do the plaques look like?"),) if setting == "request" else ()
    models = _models(script=(*opening, ("ask", "Any pain?"), ("test", "Skin biopsy"), ("diagnose", guess)),
                     diagnosis=guess)
    await run_benchmark(_plan(cases, setting), tmp_path / "run", models, RunOptions(image_dir=folder))
    fake: RoleFake = models["reasoning"]
    assert {"doctor", "patient", "judge"} <= set(fake.calls)
    for text, role in zip(fake.texts_seen, fake.calls, strict=True):
        for option in DISTRACTORS:
            assert option not in text, (role, option)
        if role not in ("judge", "rubric"):
            assert DIAGNOSIS not in text, role
    for text in models["imaging"].texts_seen:
        assert not any(option in text for option in [*DISTRACTORS, DIAGNOSIS])
    assert models["imaging"].texts_seen, "the image was read"


async def test_the_report_counts_image_statuses_and_leaves_unavailable_out(tmp_path: Path, nejm) -> None:
    cases, folder, _ = nejm
    run_dir = tmp_path / "run"
    await run_benchmark(_plan(cases, "start"), run_dir, _models(script=(("diagnose", DIAGNOSIS),)),
                        RunOptions(image_dir=folder))
    files = write_report(run_dir)
    report = files.markdown.read_text(encoding="utf-8")
    assert "## Images" in report
    assert "| read | 1 |" in report and "| unavailable | 1 |" in report
    assert "Accuracy without image-unavailable attempts:** 100.0% (1/1" in report
    assert "read (1)" in report and "unavailable (0)" in report  # the cases table's image column
    html = files.html.read_text(encoding="utf-8")
    assert "Images" in html and "unavailable" in html
    page = (run_dir / "transcripts" / "nejm_0000-0.html").read_text(encoding="utf-8")
    transcript = _transcript(run_dir, next(r for r in read_run(run_dir).results if r.case_id == cases[0].id))
    assert transcript["images"]["refs"][0]["sha256"] in page and "image-1" in page


async def test_the_call_cache_keys_image_calls_without_storing_the_image(tmp_path: Path, nejm) -> None:
    cases, folder, image = nejm
    cache = tmp_path / "calls.sqlite"
    script = (("diagnose", DIAGNOSIS),)
    first = _models(script=script)
    await run_benchmark(_plan(cases[:1], "start"), tmp_path / "a", first, RunOptions(image_dir=folder,
                                                                                      cache_path=cache))
    assert len(first["imaging"].digests) == 1
    # The stored rows, not the raw file: SQLite may write stale heap memory into a page's unused part.
    with sqlite3.connect(cache) as connection:
        rows = connection.execute("SELECT key, value FROM calls").fetchall()
    assert rows
    stored = b"\n".join(f"{key}\n{value}".encode() for key, value in rows)
    encoded = base64.b64encode(image.read_bytes())
    assert encoded[:64] not in stored and image.read_bytes()[:64] not in stored
    again = _models(script=script)
    summary = await run_benchmark(_plan(cases[:1], "start"), tmp_path / "b", again,
                                  RunOptions(image_dir=folder, cache_path=cache))
    assert again["imaging"].digests == [] and summary.cache_misses == 0  # the read replayed from the cache
    assert _results(tmp_path / "b")[cases[0].id].image_status == "read"
    # A different image is a different call: the key covers the image bytes.
    Image.new("RGB", (48, 40), (10, 20, 200)).save(image, format="PNG")
    other = _models(script=script)
    await run_benchmark(_plan(cases[:1], "start"), tmp_path / "c", other,
                        RunOptions(image_dir=folder, cache_path=cache))
    assert len(other["imaging"].digests) == 1


def test_image_setting_is_part_of_the_compared_config(nejm) -> None:
    cases, _, _ = nejm
    start, request = _plan(cases, "start").config, _plan(cases, "request").config
    assert [name for name, _, _ in start.differences(request)] == ["image_setting"]
    assert _plan(cases, "request").config.models["imaging"] == IMAGING_SPEC
    with pytest.raises(ValueError, match="image setting"):
        _plan(cases, "sometimes")


class _Recording(BaseChatModel):
    """Passes every call to ``inner`` and keeps each answer's response metadata (image tokens, images)."""

    inner: BaseChatModel
    answers: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        result = self.inner._generate(messages, stop=stop, **kwargs)
        self.answers.append(dict(result.generations[0].message.response_metadata))
        return result

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        result = await self.inner._agenerate(messages, stop=stop, **kwargs)
        self.answers.append(dict(result.generations[0].message.response_metadata))
        return result


@pytest.mark.slow
async def test_a_nejm_case_read_by_the_tiny_random_image_model(tmp_path: Path, nejm, tiny_image_model_dir) -> None:
    # The real processor, chat template and generate loop on real pixels; the weights are random, so the read's
    # words mean nothing, but the image must reach the prompt as image tokens and come back as a read.
    from agents.backends import build_image_model

    cases, folder, _ = nejm
    spec = f"hf:{tiny_image_model_dir}?device=cpu"
    imaging = _Recording(inner=build_image_model(spec, max_new_tokens=24, seed=0))
    models = {**fake_models(diagnosis=DIAGNOSIS, script=(("image", "Describe the lesion"),
                                                         ("diagnose", DIAGNOSIS))), "imaging": imaging}
    specs = {**SPECS, "imaging": spec}
    plan = make_plan(cases[:1], protocol="clinicflow", models=specs, max_turns=4, image_setting="request")
    summary = await run_benchmark(plan, tmp_path / "run", models, RunOptions(image_dir=folder))
    assert summary.errors == 0
    result = _results(tmp_path / "run")[cases[0].id]
    # Greedy decoding of random weights gives tokens that parse as no JSON: the reader keeps them as a prose read.
    assert result.status == "ok" and result.image_status == "read" and result.image_reads == 1
    assert imaging.answers and all(m.get("images") == 1 and m.get("image_tokens") == 4 for m in imaging.answers)
    transcript = _transcript(tmp_path / "run", result)
    (read,) = transcript["images"]["reads"]
    assert read["model"] and result.usage["imaging"].calls == len(imaging.answers)


def test_a_distributed_worker_reads_case_images_from_its_own_folder(redis_url: str, tmp_path: Path, nejm) -> None:
    """A worker gets images from its own store and folder (``WorkerImages``), not the enqueuing machine's."""
    from simulations.bench.config import RunEnvironment
    from simulations.bench.distributed import RunRecord, RunStore, WorkerImages, WorkerRuntime
    from tools.images import ImageStore

    cases, folder, image = nejm
    record = RunRecord(run_id="nejm-worker", plan=_plan(cases, "start"), environment=RunEnvironment(command=["t"]))
    store = RunStore(redis_url)
    store.save_record(record)
    models = _models(script=(("diagnose", DIAGNOSIS),))
    images = WorkerImages(store=ImageStore(tmp_path / "worker-images"), image_dir=folder)
    runtime = WorkerRuntime(redis_url, lambda _config: models, worker="w1", images=images)
    try:
        for attempt in record.plan.attempts():
            assert runtime.run(record.run_id, attempt.key).endswith(": ok")
    finally:
        runtime.close()
    results = {r.case_id: r for r in store.results(record.run_id).values()}
    store.close()
    # The first case's image is in the worker's folder; the second has only an unreachable URL.
    assert results[cases[0].id].image_status == "read" and results[cases[1].id].image_status == "unavailable"
    assert models["imaging"].digests == [hashlib.sha256(image.read_bytes()).hexdigest()]
