"""``clinicflow consult --checkpointer redis://...`` as a user runs it: one process starts a consultation, another
resumes it from Redis (a real server started for the tests), and a Redis that is not there is a clear error."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from tests.clinicflow.test_cli import _closed_port, clinicflow


def _keys_of(url: str, thread: str) -> dict[bytes, int]:
    with redis.Redis.from_url(url) as client:
        return {key: client.ttl(key) for key in client.scan_iter(count=1000) if thread.encode() in key}


def test_consultation_paused_in_one_process_resumes_from_redis_in_another(
    tmp_path: Path, model_cache_dir: Path, redis_url: str
) -> None:
    data_dir = tmp_path / "data"
    env = {"CLINICFLOW_DATA_DIR": str(data_dir), "CLINICFLOW_CHECKPOINT_TTL_MINUTES": "30"}
    # Process 1: no one answers (stdin is empty), so the consultation pauses at the doctor's first question.
    first = clinicflow("consult", "--case", "demo:flank-pain", "--interactive", "--max-turns", "2",
                       "--checkpointer", redis_url, cache_dir=model_cache_dir.parent, timeout=600, extra_env=env)
    assert first.returncode == 3, first.stdout + first.stderr
    hint = first.stderr.split("Continue with:", 1)[1].split()
    thread = hint[hint.index("--resume") + 1]
    assert hint[hint.index("--checkpointer") + 1] == redis_url
    question = first.stdout.split("The doctor asks:", 1)[1].strip().splitlines()[0].strip()

    # The checkpoints are in Redis (with the time-to-live asked for), not in the default SQLite file.
    keys = _keys_of(redis_url, thread)
    assert keys and all(0 < ttl <= 30 * 60 for ttl in keys.values()), keys
    assert not (data_dir / "checkpoints.sqlite").exists()

    # Process 2 knows the consultation only through Redis.
    second = clinicflow("consult", "--resume", thread, "--checkpointer", redis_url, "--out", str(tmp_path / "o"),
                        cache_dir=model_cache_dir.parent, timeout=600, stdin="Sharp pain in my left flank.\n",
                        extra_env={"CLINICFLOW_DATA_DIR": str(data_dir)})
    assert second.returncode == 0, second.stdout + second.stderr
    transcript = json.loads((tmp_path / "o" / "transcript.json").read_text())
    assert transcript["thread_id"] == thread
    assert transcript["environment"] == "interactive"
    dialogue = transcript["dialogue"]
    # Turn 1's question was asked by process 1; the answer and what followed come from process 2.
    assert dialogue[0]["role"] == "doctor" and dialogue[0]["turn"] == 1
    assert question.startswith(dialogue[0]["text"][:40].strip())
    assert dialogue[1]["text"] == "Sharp pain in my left flank."
    assert [e["turn"] for e in dialogue if e["role"] == "doctor"][-1] == 2
    assert transcript["outcome"]["final_diagnosis"]
    assert not (data_dir / "checkpoints.sqlite").exists()


@pytest.mark.parametrize("userinfo, shown", [("", ""), (":s3cret-pw@", "***@")])
def test_unreachable_redis_checkpointer_is_a_clear_error_without_the_password(
    tmp_path: Path, userinfo: str, shown: str
) -> None:
    port = _closed_port()
    url = f"redis://{userinfo}127.0.0.1:{port}/0"
    started = time.monotonic()
    done = clinicflow("consult", "--case", "demo:flank-pain", "--interactive", "--checkpointer", url, timeout=120,
                      extra_env={"CLINICFLOW_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 1, done.stdout + done.stderr
    assert time.monotonic() - started < 30
    assert "Traceback" not in done.stderr
    assert "cannot reach the Redis checkpointer" in done.stderr
    assert f"redis://{shown}127.0.0.1:{port}/0" in done.stderr.replace("\n", "")
    assert "s3cret-pw" not in done.stdout + done.stderr


def test_checkpointer_and_checkpoint_db_together_are_refused(tmp_path: Path) -> None:
    done = clinicflow("consult", "--case", "demo:flank-pain", "--checkpointer", "redis://127.0.0.1:1/0",
                      "--checkpoint-db", str(tmp_path / "ck.sqlite"))
    assert done.returncode == 2
    assert "not both" in done.stderr
