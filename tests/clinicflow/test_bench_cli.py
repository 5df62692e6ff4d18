"""`clinicflow bench` as a user runs it: real processes, real case files, the embedded model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clinicflow.test_cli import clinicflow
from tests.conftest import REPO_ROOT

AGENTCLINIC = REPO_ROOT.parent / "shared" / "data" / "agentclinic"


@pytest.mark.slow
@pytest.mark.skipif(not (AGENTCLINIC / "agentclinic_medqa.jsonl").is_file(),
                    reason="../shared/data/agentclinic/agentclinic_medqa.jsonl is not present on this machine")
def test_medqa_limit_3_on_the_embedded_model_completes_reports_and_resumes(tmp_path: Path,
                                                                            model_cache_dir: Path) -> None:
    run_dir = tmp_path / "run"
    command = ("bench", "run", "--dataset", "medqa", "--data-dir", str(AGENTCLINIC), "--limit", "3",
               "--max-turns", "1", "--run-dir", str(run_dir))
    done = clinicflow(*command, cache_dir=model_cache_dir.parent, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert sorted(r["case_id"] for r in lines) == ["medqa:0000", "medqa:0001", "medqa:0002"]
    assert all(r["status"] == "ok" and r["protocol"] == "clinicflow" for r in lines), lines
    assert all(r["usage"]["reasoning"]["output_tokens"] > 0 for r in lines)  # a real model generated tokens
    assert all(r["rubric"] is not None and r["verdict"] is not None for r in lines)
    assert (run_dir / "report.html").is_file() and "clinicflow" in (run_dir / "report.md").read_text()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["datasets"][0]["sha256"] == (
        "d91038a2984f21bb1d43edd88c7958d090ef42ba80f5be487b22b903bf3a35ea")

    again = clinicflow(*command, cache_dir=model_cache_dir.parent, timeout=600)
    assert again.returncode == 0, again.stderr
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 3  # nothing redone, nothing duplicated

    changed = clinicflow(*command, "--seed", "7", cache_dir=model_cache_dir.parent, timeout=600)
    assert changed.returncode == 1
    assert "different configuration" in changed.stderr and "seed: 0 -> 7" in changed.stderr


def test_a_dataset_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    done = clinicflow("bench", "run", "--dataset", "medqa_ext", "--data-dir", str(tmp_path), cache_dir=tmp_path)
    assert done.returncode == 2
    assert "agentclinic_medqa_extended.jsonl" in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_bias_is_a_clear_error(tmp_path: Path) -> None:
    done = clinicflow("bench", "run", "--dataset", "demo", "--bias", "doctor:optimism", cache_dir=tmp_path)
    assert done.returncode == 2 and "unknown doctor bias 'optimism'" in done.stderr


def test_biases_lists_all_23(tmp_path: Path) -> None:
    done = clinicflow("bench", "biases", cache_dir=tmp_path)
    names = done.stdout.split()
    assert done.returncode == 0 and names[0] == "none"
    assert sum(n.startswith("doctor:") for n in names) == 12 and sum(n.startswith("patient:") for n in names) == 11


def test_report_and_compare_refuse_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    for args in (("report", str(tmp_path)), ("compare", str(tmp_path), str(tmp_path))):
        done = clinicflow("bench", *args, cache_dir=tmp_path)
        assert done.returncode == 1 and "config.json" in done.stderr and "Traceback" not in done.stderr
