"""Distributed benchmark runs: real Redis (the session server, or one of the test's own), real Celery workers in
subprocesses on the role-aware fake; short visibility timeouts so a killed worker's task comes back quickly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulations.bench import make_plan, read_run, write_report
from simulations.bench.config import RunEnvironment
from simulations.bench.distributed import (
    QueueError,
    RunRecord,
    RunStore,
    enqueue,
    export_run,
    make_celery_app,
    send_attempts,
)
from simulations.cases import demo_cases
from tests.simulations.bench.fakes import SPECS

WORKER = Path(__file__).with_name("run_fake_worker.py")
REPO = Path(__file__).resolve().parents[3]


def _record(run_id: str, repeats: int = 1) -> RunRecord:
    plan = make_plan(demo_cases(), protocol="clinicflow", models=SPECS, max_turns=6, repeats=repeats)
    return RunRecord(run_id=run_id, plan=plan, environment=RunEnvironment(command=["test"]))


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(url: str, *, delay: float = 0.0, concurrency: int = 4, visibility: float = 30.0) -> subprocess.Popen:
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        process = subprocess.Popen([sys.executable, str(WORKER), url, str(delay), str(concurrency), str(visibility)],
                                   cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)


def _wait(condition: Callable[[], bool], timeout: float, what: str, tmp_path: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "".join(p.read_text(errors="replace")[-3000:] for p in sorted((tmp_path or Path()).glob("*.log")))
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.2)


def _result_lines(run_dir: Path) -> list[str]:
    import json

    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return [json.loads(line)["attempt"] for line in lines if line.strip()]


@pytest.mark.slow
def test_end_to_end_one_worker_export_and_report(redis_url: str, start_worker: Callable, tmp_path: Path) -> None:
    record = _record("e2e-run")
    planned = [a.key for a in record.plan.attempts()]
    assert enqueue(record, redis_url) == planned
    store = RunStore(redis_url)
    assert store.status("e2e-run").queued == len(planned)
    start_worker(redis_url, delay=0.05, concurrency=4)
    _wait(lambda: store.status("e2e-run").done == len(planned), 60, "all attempts", tmp_path)
    status = store.status("e2e-run")
    assert (status.failed, status.running, status.queued) == (0, 0, 0)
    assert len(status.workers) == 1 and status.workers[0].finished == len(planned)
    # Enqueuing again sends nothing: every attempt is finished.
    assert enqueue(record, redis_url) == []

    run_dir = tmp_path / "run"
    summary = export_run(redis_url, "e2e-run", run_dir)
    assert (summary.written, summary.missing) == (len(planned), 0)
    again = export_run(redis_url, "e2e-run", run_dir)
    assert (again.written, again.already) == (0, len(planned))
    assert sorted(_result_lines(run_dir)) == sorted(planned)
    loaded = read_run(run_dir)
    assert loaded.run_id == "e2e-run" and loaded.problems == []
    assert sorted(r.attempt for r in loaded.results) == sorted(planned)
    assert all(r.status == "ok" and r.correct for r in loaded.results)
    assert all((run_dir / r.transcript).is_file() for r in loaded.results if r.transcript)
    files = write_report(run_dir)
    assert files.markdown.is_file() and files.html.is_file()
    store.close()


@pytest.mark.slow
def test_killed_worker_attempt_is_redelivered_and_counted_once(
    redis_url: str, start_worker: Callable, tmp_path: Path
) -> None:
    record = _record("kill-run")
    planned = [a.key for a in record.plan.attempts()]
    enqueue(record, redis_url)
    store = RunStore(redis_url)
    doomed = start_worker(redis_url, delay=1.0, concurrency=2, visibility=4)
    _wait(lambda: store.status("kill-run").running >= 2, 30, "attempts running on the first worker", tmp_path)
    in_flight = {k.decode() for k in store._client.hkeys(RunStore.key("kill-run", "running"))}
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    assert not (in_flight & set(store.results("kill-run")))  # killed in the middle of those attempts

    start_worker(redis_url, delay=0.02, concurrency=4, visibility=4)
    _wait(lambda: store.status("kill-run").done == len(planned), 60, "the run to finish after the kill", tmp_path)
    status = store.status("kill-run")
    assert status.failed == 0
    assert sum(w.finished for w in status.workers) == len(planned)
    # The attempts the killed worker was running were finished by the other one.
    finishers = {store.results("kill-run")[key].attempt for key in in_flight}
    assert finishers == in_flight
    assert not any(w.worker.startswith(f"bench-{doomed.pid}@") for w in status.workers)
    run_dir = tmp_path / "run"
    export_run(redis_url, "kill-run", run_dir)
    assert Counter(_result_lines(run_dir)) == Counter(planned)  # exactly one line per attempt
    store.close()


@pytest.mark.slow
def test_two_workers_racing_never_duplicate_an_attempt(redis_url: str, start_worker: Callable, tmp_path: Path) -> None:
    record = _record("race-run", repeats=2)
    planned = [a.key for a in record.plan.attempts()]
    enqueue(record, redis_url)
    # Every attempt is sent twice more, so both workers certainly run the same attempts.
    app = make_celery_app(redis_url)
    send_attempts(app, "race-run", planned)
    send_attempts(app, "race-run", planned)
    app.close()
    store = RunStore(redis_url)
    start_worker(redis_url, delay=0.02, concurrency=3)
    start_worker(redis_url, delay=0.02, concurrency=3)
    queue_key = "clinicflow.bench"
    _wait(lambda: store.status("race-run").done == len(planned) and store._client.llen(queue_key) == 0
          and not store._client.hlen("unacked"), 60, "the queue to drain", tmp_path)
    status = store.status("race-run")
    assert len(store.results("race-run")) == len(planned)
    assert sum(w.finished for w in status.workers) == len(planned)  # each attempt counted once, by one worker
    run_dir = tmp_path / "run"
    export_run(redis_url, "race-run", run_dir)
    assert Counter(_result_lines(run_dir)) == Counter(planned)
    store.close()


@pytest.mark.slow
def test_run_finishes_after_the_redis_server_restarts(start_worker: Callable, tmp_path: Path) -> None:
    from tests.redis_server import RedisBinariesMissing, RedisServer

    try:
        server = RedisServer(appendonly=True)
    except RedisBinariesMissing as exc:
        pytest.skip(f"no Redis server binaries: {exc}")
    with server:
        url = server.url
        record = _record("restart-run", repeats=2)
        planned = [a.key for a in record.plan.attempts()]
        enqueue(record, url)
        store = RunStore(url)
        start_worker(url, delay=0.1, concurrency=3, visibility=5)
        _wait(lambda: store.status("restart-run").done >= 2, 60, "some attempts before the restart", tmp_path)
        before = store.results("restart-run")
        assert len(before) < len(planned)  # restarted in the middle of the run
        server.restart()
        _wait(lambda: store.status("restart-run").done == len(planned), 60, "the run to finish after the restart",
              tmp_path)
        after = store.results("restart-run")
        assert set(before) <= set(after) and all(r.status == "ok" for r in after.values())
        assert sum(w.finished for w in store.status("restart-run").workers) == len(planned)
        run_dir = tmp_path / "run"
        export_run(url, "restart-run", run_dir)
        assert Counter(_result_lines(run_dir)) == Counter(planned)
        store.close()


def test_unreachable_queue_fails_fast_with_a_clear_error() -> None:
    from tests.redis_server import free_port

    url = f"redis://user:secret@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(QueueError) as caught:
        enqueue(_record("nowhere"), url)
    assert time.monotonic() - started < 15
    assert "127.0.0.1" in str(caught.value) and "secret" not in str(caught.value)


def test_store_keeps_one_result_per_attempt_and_prefers_ok(redis_url: str) -> None:
    from simulations.bench.records import AttemptError, AttemptResult

    store = RunStore(redis_url)
    base = {"run_id": "r", "attempt": "a|none|0", "case_id": "a", "dataset": "demo", "repeat": 0, "seed": 1,
                "protocol": "clinicflow", "measurement_mode": "strict"}
    error = AttemptResult(**base, status="error", error=AttemptError(type="X", message="down"))
    ok = AttemptResult(**base, status="ok", correct=True)
    assert store.store_outcome("r", error, None, "trace", "w1")
    assert not store.store_outcome("r", error, None, "trace", "w1")  # an error never replaces an error
    assert store.store_outcome("r", ok, {"t": 1}, None, "w2")  # an ok replaces an error
    assert not store.store_outcome("r", ok, {"t": 2}, None, "w1")  # nothing replaces an ok
    assert store.results("r")["a|none|0"].status == "ok"
    assert store.transcript("r", "a|none|0") == {"t": 1} and store.traceback("r", "a|none|0") is None
    store.close()
