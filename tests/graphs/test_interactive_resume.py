"""An interactive consultation paused for a person's answer survives its process and resumes from SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def phase(db: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.graphs.interactive_process", str(db), "thread-1", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_interactive_consultation_resumes_in_a_new_process(tmp_path: Path) -> None:
    db = tmp_path / "checkpoints.sqlite"
    paused = phase(db, "start")
    assert paused["next"] == ["environment"]
    assert paused["request"]["action"] == "ask"
    assert paused["request"]["text"] == "Does the pain spread to your arm?"

    final = phase(db, "resume", "Yes, down my left arm.")
    assert final["final_diagnosis"] == "Acute myocardial infarction"
    assert final["ended_by"] == "doctor"
    texts = [(e["role"], e["text"]) for e in final["dialogue"]]
    assert texts[:2] == [("doctor", "Does the pain spread to your arm?"), ("patient", "Yes, down my left arm.")]
    assert final["findings"][0]["source"] == "interactive:patient"
