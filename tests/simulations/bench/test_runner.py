"""The runner end to end on a role-aware fake model: results, resume after a kill, errors, cache replays, seeds."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulations.bench import ConfigMismatchError, RunOptions, make_plan, read_run, run_benchmark
from simulations.bench.records import AttemptResult, derive_seed
from agents.doctor.agentclinic import agentclinic_doctor_biases
from simulations.cases import demo_cases, load_cases
from simulations.patient import patient_biases
from tests.simulations.bench.fakes import SPECS, RoleFake, fake_models

SCRIPT = Path(__file__).with_name("run_fake_bench.py")


def _plan(protocol: str = "clinicflow", **kwargs):
    return make_plan(demo_cases(), protocol=protocol, models=SPECS, max_turns=6, **kwargs)


def _lines(run_dir: Path) -> list[AttemptResult]:
    text = (run_dir / "results.jsonl").read_text(encoding="utf-8")
    return [AttemptResult.model_validate_json(line) for line in text.splitlines() if line.strip()]


async def test_a_run_writes_config_results_and_transcripts(tmp_path: Path) -> None:
    models = fake_models()
    summary = await run_benchmark(_plan(repeats=2), tmp_path, models, RunOptions(concurrency=4))
    cases = demo_cases()
    assert summary.planned == 2 * len(cases) and summary.finished == summary.planned and summary.errors == 0
    lines = _lines(tmp_path)
    assert sorted(r.attempt for r in lines) == sorted(f"{c.id}|none|{k}" for c in cases for k in (0, 1))
    first = lines[0]
    assert first.protocol == "clinicflow" and first.measurement_mode == "strict" and first.status == "ok"
    assert first.turns == 3 and first.questions == 1 and first.tests == 1 and first.tests_ordered == ["Troponin"]
    assert first.usage["reasoning"].calls == 3 and first.usage["judge"].calls >= 1
    assert first.rubric is not None and first.rubric.total is not None
    transcript = json.loads((tmp_path / first.transcript).read_text())
    assert transcript["attempt"] == first.attempt and transcript["protocol"] == "clinicflow"
    assert (tmp_path / first.transcript).with_suffix(".md").is_file()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["config"]["models"] == SPECS and "langgraph" in config["environment"]["packages"]


async def test_rerunning_a_finished_run_skips_everything(tmp_path: Path) -> None:
    await run_benchmark(_plan(), tmp_path, fake_models(), RunOptions())
    again = fake_models()
    events = []
    summary = await run_benchmark(_plan(), tmp_path, again, RunOptions(), on_event=events.append)
    assert summary.skipped == summary.planned and summary.finished == 0
    assert again["reasoning"].calls == []  # no model was called
    # The progress display starts from the earlier verdicts, so its running accuracy covers the whole run.
    assert [(e.kind, e.skipped, e.judged, e.correct) for e in events] == [
        ("planned", summary.planned, summary.planned, summary.planned)]
    assert len(_lines(tmp_path)) == summary.planned


def test_resume_after_sigkill_keeps_every_attempt_exactly_once(tmp_path: Path) -> None:
    repeats = 4
    planned = repeats * len(demo_cases())
    command = [sys.executable, str(SCRIPT), str(tmp_path), "0.03", str(repeats)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = tmp_path / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and results.read_text().count("\n") >= 5:
            break
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {process.communicate()}")
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = results.read_bytes()
    kept = [line for line in before.split(b"\n")[:-1] if line.strip()]
    assert 5 <= len(kept) < planned, "the kill must land mid-run"

    finished = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"planned={planned} skipped={len(kept)}" in finished.stdout
    lines = _lines(tmp_path)
    keys = [r.attempt for r in lines]
    assert len(keys) == len(set(keys)) == planned  # every attempt exactly once, none lost
    assert results.read_bytes().startswith(b"\n".join(kept) + b"\n")  # what was written before the kill is kept
    assert read_run(tmp_path).problems == []


async def test_a_truncated_last_line_is_detected_and_its_attempt_redone(tmp_path: Path) -> None:
    await run_benchmark(_plan(), tmp_path, fake_models(), RunOptions())
    results = tmp_path / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    lost = AttemptResult.model_validate_json(lines[-1]).attempt
    results.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # a write cut short
    models = fake_models()
    summary = await run_benchmark(_plan(), tmp_path, models, RunOptions())
    assert summary.finished == 1 and summary.skipped == summary.planned - 1
    keys = [r.attempt for r in _lines(tmp_path)]
    assert sorted(keys) == sorted(set(keys)) and lost in keys and len(keys) == summary.planned
    assert (tmp_path / "results.corrupt").read_bytes()  # the broken bytes are kept aside, not silently dropped


async def test_a_changed_configuration_is_refused_unless_forced(tmp_path: Path) -> None:
    await run_benchmark(_plan(), tmp_path, fake_models(), RunOptions())
    with pytest.raises(ConfigMismatchError) as info:
        await run_benchmark(_plan(seed=5), tmp_path, fake_models(), RunOptions())
    assert "seed: 0 -> 5" in str(info.value) and "--force-new" in str(info.value)
    summary = await run_benchmark(_plan(seed=5), tmp_path, fake_models(), RunOptions(force_new=True))
    assert summary.skipped == 0 and summary.finished == summary.planned
    assert list(tmp_path.glob("superseded-*/results.jsonl"))  # the old run was moved aside, not deleted


async def test_a_failing_model_is_an_error_result_and_is_retried_on_resume(tmp_path: Path) -> None:
    broken = fake_models(fail_roles=("patient",))
    summary = await run_benchmark(_plan(), tmp_path, broken, RunOptions(concurrency=2))
    assert summary.errors == summary.planned and summary.finished == 0
    error = _lines(tmp_path)[0].error
    assert error is not None and "HTTP 503" in error.message
    assert "ModelUnavailableError" in (tmp_path / "errors.log").read_text()

    summary = await run_benchmark(_plan(), tmp_path, fake_models(), RunOptions(concurrency=2))
    assert summary.skipped == 0 and summary.finished == summary.planned
    latest = read_run(tmp_path).results
    assert len(latest) == summary.planned and all(r.status == "ok" for r in latest)


async def test_a_doctor_model_failure_fails_the_attempt_instead_of_degrading_silently(tmp_path: Path) -> None:
    # Our doctor degrades to a safe question when its model fails; the runner must still count the attempt as an
    # error, not as a consultation the model took part in.
    summary = await run_benchmark(_plan(), tmp_path, fake_models(fail_roles=("doctor",)), RunOptions())
    assert summary.errors == summary.planned
    assert all(r.error and "reasoning" in r.error.message for r in _lines(tmp_path))


async def test_cached_rerun_replays_exactly_without_calling_the_model(tmp_path: Path) -> None:
    cache = tmp_path / "calls.sqlite"
    first = await run_benchmark(_plan(temperature=0.7), tmp_path / "a", fake_models(), RunOptions(cache_path=cache))
    replay_models = fake_models()
    second = await run_benchmark(_plan(temperature=0.7), tmp_path / "b", replay_models,
                                 RunOptions(cache_path=cache))
    assert replay_models["reasoning"].calls == []
    assert second.cache_misses == 0 and second.cache_hits == first.cache_misses > 0

    def outcome(r: AttemptResult) -> tuple:
        return (r.attempt, r.final_diagnosis, r.correct, r.turns, r.tests_ordered, r.input_tokens)

    assert [outcome(r) for r in second.results] == [outcome(r) for r in first.results]


async def test_each_attempt_gets_its_own_seed_derived_from_the_run_seed(tmp_path: Path) -> None:
    models = fake_models()
    await run_benchmark(_plan(repeats=2, seed=11), tmp_path, models, RunOptions(concurrency=1))
    seeds = {kwargs.get("seed") for kwargs in models["reasoning"].kwargs_seen}
    expected = {derive_seed(11, c.id, "none", k) for c in demo_cases() for k in (0, 1)}
    assert seeds == expected and len(expected) == 2 * len(demo_cases())
    assert {r.seed for r in _lines(tmp_path)} == expected


async def test_concurrency_bounds_attempts_in_flight(tmp_path: Path) -> None:
    in_flight = peak = 0

    class Counting(RoleFake):
        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.01)
                return self._answer(messages, kwargs)
            finally:
                in_flight -= 1

    model = Counting(calls=[], kwargs_seen=[], systems_seen=[])
    models = dict.fromkeys(SPECS, model)
    await run_benchmark(_plan(repeats=2), tmp_path, models, RunOptions(concurrency=3, max_connections=64))
    assert peak == 3  # one call in flight per attempt, three attempts at once


async def test_biases_multiply_the_attempts_and_reach_the_prompts(tmp_path: Path) -> None:
    models = fake_models()
    plan = _plan(biases=["none", "doctor:confirmation", "patient:self_diagnosis"])
    summary = await run_benchmark(plan, tmp_path, models, RunOptions())
    assert summary.planned == 3 * len(demo_cases())
    assert {r.bias for r in _lines(tmp_path)} == {"none", "doctor:confirmation", "patient:self_diagnosis"}
    doctor_note = agentclinic_doctor_biases()["confirmation"]
    patient_note = patient_biases()["self_diagnosis"]
    doctor_prompts = [s for s, role in zip(models["reasoning"].systems_seen, models["reasoning"].calls, strict=True)
                      if role == "doctor"]
    patient_prompts = [s for s, role in zip(models["reasoning"].systems_seen, models["reasoning"].calls, strict=True)
                       if role == "patient"]
    # Each condition reaches only its own attempts: a third of the doctor's calls carry the doctor's bias.
    assert 0 < sum(doctor_note in p for p in doctor_prompts) < len(doctor_prompts)
    assert 0 < sum(patient_note in p for p in patient_prompts) < len(patient_prompts)
    assert not any(patient_note in p for p in doctor_prompts)
    with pytest.raises(ValueError, match="unknown doctor bias"):
        _plan(biases=["doctor:optimism"])


async def test_agentclinic_protocol_is_named_and_reproduces_upstream_scoring(tmp_path: Path) -> None:
    summary = await run_benchmark(_plan("agentclinic"), tmp_path, fake_models(verdict="Yes."), RunOptions())
    lines = _lines(tmp_path)
    assert {(r.protocol, r.measurement_mode) for r in lines} == {("agentclinic", "agentclinic")}
    assert all(r.correct for r in lines) and summary.correct == summary.planned
    # Upstream counted only a bare lower-case "yes": "Yes." would have been scored wrong.
    assert all(r.verdict and r.verdict.upstream_correct is False for r in lines)
    assert all(r.rubric is None for r in lines)  # the rubric judge is the clinicflow protocol's


async def test_a_leaking_case_is_flagged(tmp_path: Path, write_lines, medqa_record) -> None:
    # The gout case's joint aspiration reads "consistent with gout": ordering it hands the doctor the answer.
    cases = load_cases(write_lines(tmp_path / "gout.jsonl", [medqa_record()])).cases

    class Aspirating(RoleFake):
        def _answer(self, messages, kwargs):  # type: ignore[override]
            result = super()._answer(messages, kwargs)
            if self.calls[-1] == "doctor":
                message = result.generations[0].message
                message.content = str(message.content).replace("Troponin", "Joint aspiration")
            return result

    model = Aspirating(calls=[], kwargs_seen=[], systems_seen=[], diagnosis="Gout")
    plan = make_plan(cases, protocol="clinicflow", models=SPECS, max_turns=6)
    await run_benchmark(plan, tmp_path / "run", dict.fromkeys(SPECS, model), RunOptions())
    (result,) = _lines(tmp_path / "run")
    assert result.case_leak_prone and result.leak
    assert result.leak_sources == ["test:tests.Joint_Aspiration"], result.leak_sources
