"""Distributed runs (Celery workers on one Redis) against the local runner, at equal total concurrency.

The same case attempts (protocol ``agentclinic``, so every attempt makes the same calls; the first MedQA cases of
``../shared/data/agentclinic/agentclinic_medqa.jsonl`` when present, else the demo cases with repeats) with every
role on `model_server.py` (``openai:bench@URL``, each answer after a fixed delay, 100 ms), three ways:

- local: `simulations.bench.run_benchmark` in this process at concurrency 32 (no Redis involved);
- 1 worker x 32: one ``clinicflow bench worker --queue URL --concurrency 32`` process (the real CLI, a subprocess);
- 2 workers x 16: two such processes at concurrency 16 each.

The queue is a throwaway Redis-compatible server started with ``tests/redis_server.py`` (``RedisServer``: Valkey
with the search and JSON modules from PyPI wheels, on a free 127.0.0.1 port; this benchmark imports it from the
test package, so it needs the test extras). Workers are warmed up first: a separate run of as many attempts as they
have threads, so process start-up, imports, model building and the first connections are not counted. A
distributed run is enqueued with the Python ``enqueue`` (what ``clinicflow bench run --queue`` calls, without the
CLI's own start-up) and timed from just before ``enqueue`` until a poll (every 20 ms) sees a result for every
attempt in the run's Redis results hash.

Queue overhead per attempt: the slot time the queue costs each attempt, (distributed wall - local wall) x slots /
attempts, slots = min(total concurrency, attempts). At equal concurrency both sides have the same slots and the same
attempts, so whatever the distributed side spends beyond the local wall is spread over the slots, each running
attempts / slots attempts in turn; it counts enqueueing, broker round trips, task pick-up, result writes and
the workers' own scheduling. Printed next to it, as diagnostics: the mean attempt wall (``AttemptResult.
wall_seconds``, the same code path on both sides) and the pick-up delay of the first attempt (its ``started_at``
minus the moment ``enqueue`` was called, estimated as the first stored result's time, from the workers hash in
milliseconds, less the shortest attempt's wall, since ``started_at`` has whole seconds only).

Targets (printed as met / NOT met, never asserted): distributed throughput within 15% of local at equal total
concurrency (for both distributed modes), queue overhead under 50 ms per attempt. Exits non-zero only when something
fails outright (a server or a worker does not start, a run does not finish in time).

    python benchmarks/distributed.py [--attempts 64] [--delay-ms 100] [--turns 20] [--cases-file FILE] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis
from model_server import serve_model_server
from throughput import DEFAULT_CASES_FILE, ROLES, Selection, cores_and_load, role_models, select_cases

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # tests/redis_server.py lives in the test package
    sys.path.insert(0, str(REPO_ROOT))

from simulations.bench import AttemptResult, BenchPlan, RunOptions, make_plan, run_benchmark
from simulations.bench.config import RunEnvironment
from simulations.bench.distributed import RunRecord, RunStore, enqueue
from tests.redis_server import RedisServer

TOTAL_CONCURRENCY = 32
TARGET_RATIO, TARGET_OVERHEAD_MS = 0.85, 50.0
POLL_S = 0.02
RUN_TIMEOUT_S = 600.0
WORKER_STOP_S = 15.0


@dataclass
class Measured:
    label: str
    concurrency: int
    wall: float
    results: list[AttemptResult]
    pickup: float | None = None  # seconds from enqueue to the first attempt's start (distributed only)

    @property
    def errors(self) -> list[AttemptResult]:
        return [r for r in self.results if r.status != "ok"]

    @property
    def throughput(self) -> float:
        return len(self.results) / self.wall if self.wall > 0 else 0.0

    @property
    def mean_attempt(self) -> float:
        return sum(r.wall_seconds for r in self.results) / max(1, len(self.results))


def _plan(selection: Selection, base_url: str, turns: int) -> BenchPlan:
    specs = {role: f"openai:bench@{base_url}" for role in ROLES}
    return make_plan(selection.cases, protocol="agentclinic", models=specs, max_turns=turns,
                     repeats=selection.repeats)


# ---------------- local ----------------


async def _local_runs(base_url: str, selection: Selection, turns: int, concurrency: int, work: Path) -> Measured:
    models = role_models(base_url)
    options = RunOptions(concurrency=concurrency, max_connections=max(32, concurrency))
    warm = Selection(selection.cases[:1], 1, "warm-up")
    await run_benchmark(_plan(warm, base_url, turns), work / "local-warm-up", models, options)
    started = time.perf_counter()
    summary = await run_benchmark(_plan(selection, base_url, turns), work / "local", models, options)
    return Measured(f"local runner x {concurrency}", concurrency, time.perf_counter() - started, summary.results)


# ---------------- distributed ----------------


def _clinicflow() -> list[str]:
    script = Path(sys.executable).with_name("clinicflow")
    if script.is_file():
        return [str(script)]
    found = shutil.which("clinicflow")
    return [found] if found else [sys.executable, "-m", "clinicflow"]


@contextmanager
def workers(queue_url: str, concurrencies: Sequence[int], logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``clinicflow bench worker`` processes; stopped at the end (SIGTERM, then SIGKILL)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for index, concurrency in enumerate(concurrencies):
            log = (logs / f"worker-{len(concurrencies)}x{concurrency}-{index}.log").open("wb")
            command = [*_clinicflow(), "bench", "worker", "--queue", queue_url, "--concurrency", str(concurrency)]
            started.append(subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT))
            log.close()
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + WORKER_STOP_S
        for process in started:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _log_tails(logs: Path) -> str:
    return "".join(f"\n--- {p.name} ---\n{p.read_text(errors='replace')[-2000:]}" for p in sorted(logs.glob("*.log")))


def run_distributed(
    queue_url: str, selection: Selection, base_url: str, turns: int, run_id: str,
    processes: list[subprocess.Popen[bytes]], logs: Path,
) -> tuple[float, float, list[AttemptResult]]:
    """Enqueue a run and wait for all its results; (wall seconds, pick-up seconds, results)."""
    record = RunRecord(run_id=run_id, plan=_plan(selection, base_url, turns),
                       environment=RunEnvironment(command=["benchmarks/distributed.py"]), max_connections=32)
    planned = len(record.plan.attempts())
    client = redis.Redis.from_url(queue_url)
    results_key = RunStore.key(run_id, "results")
    try:
        enqueued_at = datetime.now(UTC)
        started = time.perf_counter()
        enqueue(record, queue_url)
        deadline = started + RUN_TIMEOUT_S
        while client.hlen(results_key) < planned:
            if time.perf_counter() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"run {run_id}: {client.hlen(results_key)} of {planned} results after "
                                   f"{time.perf_counter() - started:.0f} s (worker exit codes "
                                   f"{[p.poll() for p in processes]}){_log_tails(logs)}")
            time.sleep(POLL_S)
        wall = time.perf_counter() - started
    finally:
        client.close()
    store = RunStore(queue_url)
    try:
        results = list(store.results(run_id).values())
        firsts = [datetime.fromisoformat(w.first) for w in store.status(run_id).workers if w.first]
    finally:
        store.close()
    # AttemptResult.started_at has whole seconds only; the workers hash has milliseconds: the first result's
    # store time less the shortest attempt's wall is when that attempt started (attempts make the same calls).
    shortest = min((r.wall_seconds for r in results), default=0.0)
    pickup = (min(firsts) - enqueued_at).total_seconds() - shortest if firsts else float("nan")
    return wall, pickup, results


def measure_workers(
    queue_url: str, selection: Selection, base_url: str, turns: int, concurrencies: Sequence[int], logs: Path
) -> Measured:
    total = sum(concurrencies)
    label = f"{len(concurrencies)} worker{'s' if len(concurrencies) > 1 else ''} x {concurrencies[0]}"
    tag = uuid.uuid4().hex[:8]
    with workers(queue_url, concurrencies, logs) as processes:
        # Warm-up: one attempt per thread of every worker (prefetch 1), a separate run id.
        warm = select_cases(total, None)
        run_distributed(queue_url, warm, base_url, turns, f"warm-{tag}", processes, logs)
        wall, pickup, results = run_distributed(queue_url, selection, base_url, turns, f"bench-{tag}", processes,
                                                logs)
    return Measured(label, total, wall, results, pickup)


# ---------------- printing ----------------


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_table(local: Measured, distributed: list[Measured]) -> None:
    print(f"\n{'mode':<22} {'concurrency':>11} {'wall s':>8} {'attempts/s':>10} {'vs local':>9} "
          f"{'overhead ms/attempt':>19} {'mean attempt s':>14} {'pick-up ms':>10}")
    print(f"{local.label:<22} {local.concurrency:>11} {local.wall:>8.2f} {local.throughput:>10.2f} {'1.00':>9} "
          f"{'-':>19} {local.mean_attempt:>14.3f} {'-':>10}")
    for run in [local, *distributed]:
        if run is not local:
            print(f"{run.label:<22} {run.concurrency:>11} {run.wall:>8.2f} {run.throughput:>10.2f} "
                  f"{run.throughput / local.throughput:>9.2f} {overhead_ms(local, run):>19.1f} "
                  f"{run.mean_attempt:>14.3f} {(run.pickup or 0.0) * 1000:>10.0f}")
        if run.errors:
            first = run.errors[0].error
            print(f"  !! {len(run.errors)} attempt(s) ended in error; first: {first.type if first else '?'}: "
                  f"{(first.message if first else '')[:200]}")
    print("overhead ms/attempt: (distributed wall - local wall) x slots / attempts, the slot time the queue "
          "costs each attempt; mean attempt s: AttemptResult.wall_seconds (the same code on both sides); pick-up "
          "ms: from calling enqueue to the first attempt's start (estimated: first stored result less the shortest "
          "attempt)")


def overhead_ms(local: Measured, run: Measured) -> float:
    """(distributed wall - local wall) x slots / attempts, slots = min(concurrency, attempts) (idle slots cost
    nothing: with fewer attempts than slots, every attempt waits the whole difference)."""
    attempts = max(1, len(run.results))
    return (run.wall - local.wall) * min(run.concurrency, attempts) / attempts * 1000


def print_targets(local: Measured, distributed: list[Measured]) -> None:
    print()
    for run in distributed:
        ratio = run.throughput / local.throughput if local.throughput else 0.0
        print(f"target: {run.label} throughput within {1 - TARGET_RATIO:.0%} of local at concurrency "
              f"{run.concurrency}: {ratio:.2f}x local -> {_met(ratio >= TARGET_RATIO)}")
    for run in distributed:
        over = overhead_ms(local, run)
        print(f"target: queue overhead < {TARGET_OVERHEAD_MS:g} ms per attempt ({run.label}): {over:.1f} ms -> "
              f"{_met(over < TARGET_OVERHEAD_MS)}")


def machine_notes(delay_ms: float) -> str:
    return (f"machine: {cores_and_load()}, Python {platform.python_version()}; the model server, the Redis "
            f"server, the workers and this process share these cores; every answer after {delay_ms:g} ms")


# ---------------- main ----------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--attempts", type=int, default=64, help="case attempts per run")
    parser.add_argument("--delay-ms", type=float, default=100.0, help="the model server's delay per call")
    parser.add_argument("--turns", type=int, default=20, help="doctor turn budget")
    parser.add_argument("--cases-file", type=Path, default=DEFAULT_CASES_FILE,
                        help="AgentClinic MedQA JSON lines (the demo cases when absent)")
    parser.add_argument("--quick", action="store_true", help="8 attempts, 20 ms delay (for tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.attempts, args.delay_ms = 8, 20.0
    if args.attempts < 1 or args.turns < 1 or args.delay_ms < 0:
        parser.error("--attempts and --turns must be at least 1, --delay-ms at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    selection = select_cases(args.attempts, args.cases_file)
    half = TOTAL_CONCURRENCY // 2
    with (serve_model_server(args.delay_ms) as base_url, RedisServer() as server,
          tempfile.TemporaryDirectory() as tmp):
        work = Path(tmp)
        print(f"distributed benchmark: {selection.attempts} attempts ({selection.label}), protocol agentclinic, at "
              f"most {args.turns} turns, every role on {base_url} answering after {args.delay_ms:g} ms; queue "
              f"{server.url}")
        local = asyncio.run(_local_runs(base_url, selection, args.turns, TOTAL_CONCURRENCY, work))
        print(f"{local.label}: {local.wall:.2f} s")
        distributed = []
        for concurrencies in ([TOTAL_CONCURRENCY], [half, half]):
            run = measure_workers(server.url, selection, base_url, args.turns, concurrencies, work)
            print(f"{run.label}: {run.wall:.2f} s")
            distributed.append(run)
    print_table(local, distributed)
    print_targets(local, distributed)
    print(machine_notes(args.delay_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
