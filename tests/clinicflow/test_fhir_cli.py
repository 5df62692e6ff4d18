"""`clinicflow fhir ...` and `consult` with a record, run as a user runs them, against a real sekmet-fhir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.clinicflow.test_cli import clinicflow
from tests.conftest import REPO_ROOT
from tools.fhirserver import SekmetServer

pytestmark = pytest.mark.slow

SECRET = "s3cr3t-bearer-Zq9XvB7LmN"


def test_patients_by_name_as_a_table_and_as_json(demo_fhir_server: SekmetServer, tmp_path: Path) -> None:
    env = {"CLINICFLOW_DATA_DIR": str(tmp_path)}
    table = clinicflow("fhir", "patients", "--name", "Keane", "--base-url", demo_fhir_server.base_url, extra_env=env)
    assert table.returncode == 0, table.stderr
    assert "demo-chest-pain" in table.stdout and "Martin Keane" in table.stdout
    as_json = clinicflow("fhir", "patients", "--name", "Keane", "--json", extra_env={
        **env, "CLINICFLOW_FHIR__BASE_URL": demo_fhir_server.base_url})
    assert as_json.returncode == 0, as_json.stderr
    assert [p["id"] for p in json.loads(as_json.stdout)] == ["demo-chest-pain"]


def test_summary_cites_its_sources_and_json_has_counts(demo_fhir_server: SekmetServer, tmp_path: Path) -> None:
    env = {"CLINICFLOW_DATA_DIR": str(tmp_path), "CLINICFLOW_FHIR__BASE_URL": demo_fhir_server.base_url}
    done = clinicflow("fhir", "summary", "demo-chest-pain", "--now", "2025-06-15", extra_env=env)
    assert done.returncode == 0, done.stderr
    assert "[Condition/demo-chest-pain-cond-htn]" in done.stdout and "Lisinopril" in done.stdout
    as_json = clinicflow("fhir", "summary", "demo-chest-pain", "--json", extra_env=env)
    counts = json.loads(as_json.stdout)["counts"]
    assert counts["active_problems"] >= 3 and counts["medications"] == 3


def test_missing_patient_and_missing_server_are_clear_errors(demo_fhir_server: SekmetServer, tmp_path: Path) -> None:
    env = {"CLINICFLOW_DATA_DIR": str(tmp_path)}
    missing = clinicflow("fhir", "summary", "nobody", "--base-url", demo_fhir_server.base_url, extra_env=env)
    assert missing.returncode == 1 and "Patient/nobody" in missing.stderr and "Traceback" not in missing.stderr
    nowhere = clinicflow("fhir", "summary", "demo-chest-pain", extra_env=env)
    assert nowhere.returncode == 2 and "clinicflow fhir serve" in nowhere.stderr
    html = clinicflow("fhir", "summary", "demo-chest-pain",
                      "--base-url", demo_fhir_server.base_url.removesuffix("/fhir") + "/ui", extra_env=env)
    assert html.returncode == 1 and "Traceback" not in html.stderr


def test_a_refused_token_never_reaches_the_output(tmp_path: Path) -> None:
    with SekmetServer(tmp_path / "auth", bearer_tokens=["the-right-token-123"]) as server:
        done = clinicflow("fhir", "patients", extra_env={
            "CLINICFLOW_DATA_DIR": str(tmp_path), "CLINICFLOW_FHIR__BASE_URL": server.base_url,
            "CLINICFLOW_FHIR__AUTH": "bearer", "CLINICFLOW_FHIR__TOKEN": SECRET})
    assert done.returncode == 1 and "401" in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_serve_announces_itself_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICFLOW_")}
    env.update(CLINICFLOW_DATA_DIR=str(tmp_path), COLUMNS="200")
    serve = subprocess.Popen([sys.executable, "-m", "clinicflow", "fhir", "serve", "--port", "0"], cwd=REPO_ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        announce = tmp_path / "fhir-server" / "server.json"
        deadline = time.monotonic() + 90
        while not announce.exists() and time.monotonic() < deadline and serve.poll() is None:
            time.sleep(0.5)
        assert announce.exists(), serve.stdout.read() if serve.poll() is not None else "no announcement"
        base = json.loads(announce.read_text())["base_url"]
        assert base.startswith("http://127.0.0.1:")
        # Without --base-url or settings, commands find the running server.
        found = clinicflow("fhir", "patients", "--name", "Donnelly", extra_env={"CLINICFLOW_DATA_DIR": str(tmp_path)})
        assert found.returncode == 0 and "demo-sudden-headache" in found.stdout, found.stderr
    finally:
        serve.send_signal(signal.SIGINT)
        output, _ = serve.communicate(timeout=60)
    assert serve.returncode == 0, output
    assert "FHIR server stopped" in output and not announce.exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/metadata", timeout=2)


def test_ask_answers_with_checked_citations_on_the_embedded_model(demo_fhir_server: SekmetServer, tmp_path: Path,
                                                                  model_cache_dir: Path) -> None:
    done = clinicflow("fhir", "ask", "demo-chest-pain", "What was the latest HbA1c?", "--now", "2025-06-15",
                      "--json", "--base-url", demo_fhir_server.base_url, cache_dir=model_cache_dir.parent,
                      timeout=900, extra_env={"CLINICFLOW_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert answer["answer"] and answer["citations"]
    assert all(c.startswith(("Observation/demo-chest-pain-", "Patient/demo-chest-pain", "Encounter/demo-chest-pain"))
               for c in answer["citations"])
    assert answer["model_calls"] >= 1


def test_consult_reads_the_record_when_given_a_server(demo_fhir_server: SekmetServer, tmp_path: Path,
                                                     model_cache_dir: Path) -> None:
    out = tmp_path / "out"
    done = clinicflow("consult", "--case", "demo:chest-pain", "--max-turns", "1", "--out", str(out),
                      "--checkpoint-db", str(tmp_path / "ck.sqlite"), "--fhir-url", demo_fhir_server.base_url,
                      cache_dir=model_cache_dir.parent, timeout=900, extra_env={"CLINICFLOW_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "record: Patient/demo-chest-pain" in done.stdout
    transcript = json.loads((out / "transcript.json").read_text())
    assert transcript["record"] == "Patient/demo-chest-pain"
    assert "[Condition/demo-chest-pain-cond-htn]" in transcript["record_summary"]
    intake = transcript["findings"][0]
    assert intake["source"] == "record" and intake["refs"] and intake["turn"] == 0
    assert "Health record summary" in (out / "transcript.md").read_text()
