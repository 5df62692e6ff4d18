"""The command line as a user runs it: real processes, the embedded model, files on disk."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def clinicflow(*args: str, cache_dir: Path | None = None, timeout: int = 60, stdin: str | None = None,
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICFLOW_")}
    env.update(extra_env or {})
    env["COLUMNS"] = "200"
    if cache_dir is not None:
        env["CLINICFLOW_CACHE_DIR"] = str(cache_dir)
    return subprocess.run([sys.executable, "-m", "clinicflow", *args], cwd=REPO_ROOT, env=env, text=True,
                          capture_output=True, timeout=timeout, input=stdin if stdin is not None else "")


def test_graph_prints_mermaid() -> None:
    done = clinicflow("graph")
    assert done.returncode == 0, done.stderr
    assert done.stdout.lstrip().startswith("---") or "graph TD" in done.stdout
    assert "doctor -.-> environment" in done.stdout


def test_models_lists_every_role_and_the_spec_forms(tmp_path: Path) -> None:
    done = clinicflow("models", "--reasoning", "openai:google/medgemma-27b-text-it@http://gpu-box:8000/v1",
                      cache_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    for word in ("reasoning", "patient", "measurement", "judge", "gpu-box:8000", "embedded", "hf:<hub id or path>"):
        assert word in done.stdout, word


def test_cases_lists_the_demo_cases() -> None:
    done = clinicflow("cases")
    assert done.returncode == 0, done.stderr
    assert "demo:chest-pain" in done.stdout and "demo:barking-cough" in done.stdout


def test_malformed_dataset_line_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "cases.jsonl"
    bad.write_text('{"OSCE_Examination": {"Objective_for_Doctor": "x"}}\n{not json\n', encoding="utf-8")
    done = clinicflow("consult", "--dataset", str(bad), "--index", "0", "--checkpoint-db", ":memory:")
    assert done.returncode != 0
    assert f"{bad}" in done.stderr and "line" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_demo_case_lists_the_valid_ones() -> None:
    done = clinicflow("consult", "--case", "demo:nope", "--checkpoint-db", ":memory:")
    assert done.returncode != 0
    assert "chest-pain" in done.stderr and "Traceback" not in done.stderr


def test_bad_model_spec_is_a_clear_error() -> None:
    done = clinicflow("consult", "--case", "demo:chest-pain", "--reasoning", "gpt-4", "--checkpoint-db", ":memory:")
    assert done.returncode != 0
    assert "gpt-4" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_consult_end_to_end_on_the_embedded_model(tmp_path: Path, model_cache_dir: Path) -> None:
    out = tmp_path / "out"
    done = clinicflow("consult", "--case", "demo:chest-pain", "--max-turns", "2", "--out", str(out),
                      "--checkpoint-db", str(tmp_path / "ck.sqlite"), cache_dir=model_cache_dir.parent, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Final diagnosis:" in done.stdout and "Correct diagnosis:" in done.stdout
    transcript = json.loads((out / "transcript.json").read_text())
    assert transcript["models"] == {r: "embedded" for r in ("reasoning", "patient", "measurement", "judge")}
    assert transcript["environment"] == "simulated/strict"
    doctor = [e for e in transcript["dialogue"] if e["role"] == "doctor"]
    assert 1 <= len(doctor) <= 2 and doctor[-1]["action"] == "diagnose"
    # Real tokens were generated and counted for every model call.
    assert all(e["output_tokens"] > 0 and e["seconds"] > 0 for e in transcript["dialogue"] if e.get("calls"))
    assert transcript["outcome"]["final_diagnosis"]
    assert transcript["verdict"] is not None and transcript["verdict"]["correct"] in (True, False, None)
    assert (out / "transcript.md").read_text().startswith("# Consultation")


@pytest.mark.slow
def test_interactive_consult_pauses_and_resumes_from_sqlite(tmp_path: Path, model_cache_dir: Path) -> None:
    db = tmp_path / "ck.sqlite"
    # No one answers (stdin is empty): the consultation pauses and says how to resume.
    first = clinicflow("consult", "--case", "demo:flank-pain", "--interactive", "--max-turns", "2",
                       "--checkpoint-db", str(db), cache_dir=model_cache_dir.parent, timeout=600)
    assert first.returncode == 3, first.stdout + first.stderr
    assert "--resume" in first.stderr
    thread = first.stderr.split("--resume", 1)[1].split()[0]
    second = clinicflow("consult", "--resume", thread, "--checkpoint-db", str(db), "--out", str(tmp_path / "o"),
                        cache_dir=model_cache_dir.parent, timeout=600, stdin="Sharp pain in my left flank.\n")
    assert second.returncode == 0, second.stdout + second.stderr
    transcript = json.loads((tmp_path / "o" / "transcript.json").read_text())
    assert transcript["environment"] == "interactive"
    assert transcript["dialogue"][1]["text"] == "Sharp pain in my left flank."
    assert transcript["outcome"]["final_diagnosis"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_unreachable_model_stops_cleanly_and_the_consultation_resumes(tmp_path: Path, model_cache_dir: Path) -> None:
    db = tmp_path / "ck.sqlite"
    dead = f"openai:patient-model@http://127.0.0.1:{_closed_port()}/v1"
    first = clinicflow("consult", "--case", "demo:chest-pain", "--max-turns", "2", "--patient", dead,
                       "--checkpoint-db", str(db), cache_dir=model_cache_dir.parent, timeout=600,
                       extra_env={"CLINICFLOW_MAX_RETRIES": "0"})
    assert first.returncode == 1, first.stdout + first.stderr
    assert "127.0.0.1" in first.stderr and "Traceback" not in first.stderr
    thread = first.stderr.split("--resume", 1)[1].split()[0]
    doctor_turn_1 = [line for line in first.stdout.splitlines() if "Doctor" in line]
    assert len(doctor_turn_1) == 1

    # The same consultation, now with a patient that answers: turn 1 is not asked again.
    second = clinicflow("consult", "--resume", thread, "--patient", "embedded", "--checkpoint-db", str(db),
                        "--out", str(tmp_path / "o"), cache_dir=model_cache_dir.parent, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    transcript = json.loads((tmp_path / "o" / "transcript.json").read_text())
    assert transcript["models"]["patient"] == "embedded"
    assert [e["turn"] for e in transcript["dialogue"] if e["role"] == "doctor"] == [1, 2]
