"""Throughput of the benchmark runner against a sequential loop shaped like upstream AgentClinic's script.

Every role (doctor, patient, measurement, judge) talks to `model_server.py` on 127.0.0.1, in its own process, which
answers every request after a fixed delay (100 ms) from a six-turn script, so both sides make the same calls and the
difference is how they are scheduled:

- sequential: upstream's loop in miniature, written here: one case after another, one blocking httpx request at a
  time, each actor given a system prompt and its whole history flattened into one growing user string; no sleep;
- ours: `simulations.bench.run_benchmark`, protocol ``agentclinic`` (the same calls per case as the loop), at each
  concurrency level, into a fresh run directory each time.

Orchestration overhead is the share of wall time not spent waiting on model calls: at concurrency 1,
1 - (model seconds) / wall; at level C, (wall - ideal) / wall with ideal = the longest attempt's chain of model calls
or the total model time over C, whichever is larger ("vs delay" does the same with the server's bare delay per call,
so it also counts HTTP and JSON work; "CPU ms/case" is this process's CPU time per attempt, which bounds the
speed-up once one event loop is saturated). Then prompt tokens per case for both protocols, with the largest single
message and the share of prompt text a prefix (KV) cache could reuse (message-granular), from the server's counters.
Targets (printed as met / NOT met, never asserted): at concurrency 32 at least 20x faster than the sequential loop,
overhead under 5% of wall. Exits non-zero only when something fails outright.

    python benchmarks/throughput.py [--delay-ms 100] [--cases 32] [--turns 20] [--concurrency-levels 1,8,32]
                                    [--cases-file FILE] [--token-cases 8] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from langchain_core.language_models import BaseChatModel
from model_server import fetch_stats, reset_stats, serve_model_server

from agents.backends import build_chat_model
from simulations.bench import AttemptResult, RunOptions, make_plan, run_benchmark
from simulations.cases import Case, demo_cases, load_cases

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES_FILE = REPO_ROOT.parent / "shared" / "data" / "agentclinic" / "agentclinic_medqa.jsonl"
ROLES = ("reasoning", "patient", "measurement", "judge")
TARGET_SPEEDUP, TARGET_LEVEL, TARGET_OVERHEAD = 20.0, 32, 0.05

# The sequential loop's prompts: upstream's structure (system prompt + one flattened user string per call, the tags
# REQUEST TEST / DIAGNOSIS READY, RESULTS / NORMAL READINGS, a Yes or No moderator), in our own words.
DOCTOR_SYSTEM = (
    "You are a doctor interviewing a patient to find their disease. You may ask {max_turns} questions in all; you "
    "have asked {asked} questions so far. Order a test by writing \"REQUEST TEST: [test]\". Reply in 1-3 sentences. "
    "Once you are sure, write \"DIAGNOSIS READY: [diagnosis]\".\n\nWhat you know: {objective}"
)
PATIENT_SYSTEM = ("You are a patient answering a doctor in 1-3 sentences. Describe symptoms only; never name your "
                  "disease.\n\nAbout you: {info}")
MEASUREMENT_SYSTEM = ("You report test results as \"RESULTS: [results]\" from the data below; for a test not in "
                      "it, answer NORMAL READINGS.\n\nData: {findings}")
MODERATOR_SYSTEM = "Decide whether the two diagnoses name the same disease. Answer Yes or No only."
FINAL_NUDGE = "This is the final question: give your diagnosis now.\n"


# ---------------- cases ----------------


@dataclass(frozen=True)
class Selection:
    cases: list[Case]
    repeats: int
    label: str

    @property
    def attempts(self) -> int:
        return len(self.cases) * self.repeats

    def in_order(self) -> list[Case]:
        """The attempts' cases in the runner's order (repeat by repeat)."""
        return [case for _ in range(self.repeats) for case in self.cases]


def select_cases(count: int, cases_file: Path | None) -> Selection:
    """``count`` attempts: the file's first cases when it exists, else the demo cases, repeated when too few."""
    if cases_file is not None and cases_file.is_file():
        pool, label = load_cases(cases_file, skip_bad=True).cases, f"cases of {cases_file.name}"
    else:
        pool, label = demo_cases(), "built-in demo cases"
    if not pool:
        raise RuntimeError(f"no cases to run ({label})")
    if len(pool) >= count:
        return Selection(pool[:count], 1, f"first {count} {label}")
    # The runner refuses a case twice in a selection, so missing attempts are repeats; an exact split is preferred
    # (7 demo cases for 32 attempts: 4 cases x 8 repeats), so that every concurrency level has `count` attempts.
    exact = [r for r in range(2, count + 1) if count % r == 0 and count // r <= len(pool)]
    repeats = exact[0] if exact else math.ceil(count / len(pool))
    chosen = pool[: math.ceil(count / repeats)]
    return Selection(chosen, repeats, f"{len(chosen)} {label} x {repeats} repeats")


# ---------------- the sequential loop (upstream-shaped) ----------------


@dataclass
class LoopCase:
    case_id: str
    diagnosis: str | None = None
    verdict: str | None = None
    turns: int = 0
    calls: int = 0
    prompt_tokens: int = 0


@dataclass
class LoopRun:
    wall: float
    cases: list[LoopCase] = field(default_factory=list)
    cpu: float = 0.0

    @property
    def calls(self) -> int:
        return sum(c.calls for c in self.cases)


class SequentialLoop:
    """One blocking request at a time, every actor's history flattened into its one user string."""

    def __init__(self, http: httpx.Client, base_url: str, max_new_tokens: int = 200) -> None:
        self.http = http
        self.url = f"{base_url}/chat/completions"
        self.max_new_tokens = max_new_tokens

    def call(self, record: LoopCase, system: str, user: str) -> str:
        body = {"model": "bench", "max_tokens": self.max_new_tokens, "temperature": 0.0,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
        response = self.http.post(self.url, json=body)
        response.raise_for_status()
        data = response.json()
        record.calls += 1
        record.prompt_tokens += int((data.get("usage") or {}).get("prompt_tokens") or 0)
        return " ".join(str(data["choices"][0]["message"]["content"]).split())

    def run_case(self, case: Case, max_turns: int) -> LoopCase:
        record = LoopCase(case.id)
        doctor_hist = patient_hist = measurement_hist = observation = ""
        for turn in range(max_turns):
            if turn == max_turns - 1:
                observation += FINAL_NUDGE
            system = DOCTOR_SYSTEM.format(max_turns=max_turns, asked=turn, objective=case.objective)
            user = f"\nThe dialogue so far: {doctor_hist}\n The latest answer: {observation}Go on.\nDoctor: "
            reply = self.call(record, system, user)
            record.turns = turn + 1
            doctor_hist += f"{observation}\n\n{reply}\n\n"
            if "DIAGNOSIS READY" in reply:
                record.diagnosis = reply.partition("DIAGNOSIS READY")[2].strip(" :[]")
                question = f"\nCorrect diagnosis: {case.correct_diagnosis}\n The doctor said: {reply}\nSame disease?"
                record.verdict = self.call(record, MODERATOR_SYSTEM, question)
                break
            if "REQUEST TEST" in reply:
                system = MEASUREMENT_SYSTEM.format(findings=str(case.findings))
                observation = self.call(record, system, f"\nThe dialogue so far: {measurement_hist}\n Request: {reply}")
                measurement_hist += f"{reply}\n\n{observation}\n\n"
                patient_hist += f"{observation}\n\n"
            else:
                system = PATIENT_SYSTEM.format(info=case.patient_info)
                user = f"\nThe dialogue so far: {patient_hist}\n The doctor said: {reply}Go on.\nPatient: "
                observation = self.call(record, system, user)
                patient_hist += f"{reply}\n\n{observation}\n\n"
                measurement_hist += f"{observation}\n\n"
        return record


def run_sequential(base_url: str, cases: Sequence[Case], max_turns: int) -> LoopRun:
    with httpx.Client(timeout=30.0, trust_env=False) as http:
        loop = SequentialLoop(http, base_url)
        started, cpu = time.perf_counter(), time.process_time()
        records = [loop.run_case(case, max_turns) for case in cases]
        return LoopRun(time.perf_counter() - started, records, time.process_time() - cpu)


# ---------------- ours ----------------


@dataclass
class OursRun:
    label: str
    concurrency: int
    wall: float
    calls: int
    results: list[AttemptResult]
    model_seconds: float
    stats: dict[str, object]
    cpu: float = 0.0  # this process's CPU seconds during the run (the server's are in its own process)

    @property
    def errors(self) -> list[AttemptResult]:
        return [r for r in self.results if r.status != "ok"]

    def overhead(self) -> float:
        """Share of wall time not explained by model calls (see the module docstring)."""
        chains = [r.model_seconds for r in self.results]
        ideal = max(max(chains, default=0.0), sum(chains) / self.concurrency)
        return (self.wall - ideal) / self.wall if self.wall > 0 else 0.0


def role_models(base_url: str) -> dict[str, BaseChatModel]:
    spec = f"openai:bench@{base_url}"
    return {role: build_chat_model(spec, timeout_s=30.0, max_retries=1) for role in ROLES}


async def run_ours(
    base_url: str, models: dict[str, BaseChatModel], selection: Selection, protocol: str, concurrency: int,
    max_turns: int, run_dir: Path,
) -> OursRun:
    specs = {role: f"openai:bench@{base_url}" for role in ROLES}
    plan = make_plan(selection.cases, protocol=protocol, models=specs, max_turns=max_turns, repeats=selection.repeats)
    options = RunOptions(concurrency=concurrency, max_connections=max(32, concurrency))
    reset_stats(base_url)
    started, cpu = time.perf_counter(), time.process_time()
    summary = await run_benchmark(plan, run_dir, models, options)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    stats = fetch_stats(base_url)
    return OursRun(f"ours ({protocol}), concurrency {concurrency}", concurrency, wall, int(stats["requests"]),
                   summary.results, summary.model_seconds, stats, cpu)


# ---------------- printing ----------------


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_speed(loop: LoopRun, runs: list[OursRun], attempts: int, delay_s: float) -> None:
    per_call = any(run.calls != loop.calls for run in runs)
    print(f"\n{'mode':<34} {'wall s':>8} {'calls':>6} {'calls/case':>10} {'speed-up':>9} "
          f"{'per call':>9} {'overhead':>9} {'vs delay':>9} {'CPU ms/case':>11}")
    print(f"{'sequential loop (upstream-shaped)':<34} {loop.wall:>8.2f} {loop.calls:>6} {loop.calls / attempts:>10.1f} "
          f"{'1.0x':>9} {'1.0x':>9} {'-':>9} {_share(loop.wall, loop.calls * delay_s):>9} "
          f"{loop.cpu / attempts * 1000:>11.0f}")
    for run in runs:
        speed = loop.wall / run.wall
        speed_call = (loop.wall / loop.calls) / (run.wall / run.calls) if run.calls and loop.calls else float("nan")
        # The least the server's delay alone allows: the longest attempt's calls, or all calls spread over the slots.
        chain = max((sum(u.calls for u in r.usage.values()) for r in run.results), default=0)
        floor = max(chain, run.calls / run.concurrency) * delay_s
        print(f"{run.label:<34} {run.wall:>8.2f} {run.calls:>6} {run.calls / attempts:>10.1f} {speed:>8.1f}x "
              f"{speed_call:>8.1f}x {run.overhead():>9.1%} {_share(run.wall, floor):>9} "
              f"{run.cpu / attempts * 1000:>11.0f}")
        if run.errors:
            first = run.errors[0].error
            print(f"  !! {len(run.errors)} attempt(s) ended in error; first: {first.type if first else '?'}: "
                  f"{(first.message if first else '')[:200]}")
    print("overhead: share of wall time outside the model calls as the client timed them; vs delay: share of wall "
          "time above what the server's delay alone needs (counts HTTP, JSON and the server's own work too); CPU "
          "ms/case: this process's CPU time per attempt (one event loop: it bounds the speed-up at high concurrency)")
    if per_call:
        print("note: the two sides made different numbers of model calls; compare the 'per call' column")


def _share(wall: float, floor: float) -> str:
    return f"{(wall - floor) / wall:.1%}" if wall > 0 else "-"


def print_targets(loop: LoopRun, runs: list[OursRun]) -> None:
    top = max(runs, key=lambda r: r.concurrency)
    speed = loop.wall / top.wall
    where = "" if top.concurrency == TARGET_LEVEL else f" (measured at concurrency {top.concurrency})"
    print(f"\ntarget: at concurrency {TARGET_LEVEL}, >= {TARGET_SPEEDUP:g}x faster than the sequential loop: "
          f"{speed:.1f}x{where} -> {_met(speed >= TARGET_SPEEDUP)}")
    for run in sorted({runs[0].concurrency: runs[0], top.concurrency: top}.values(), key=lambda r: r.concurrency):
        over = run.overhead()
        print(f"target: orchestration overhead < {TARGET_OVERHEAD:.0%} of wall at concurrency {run.concurrency}: "
              f"{over:.1%} -> {_met(over < TARGET_OVERHEAD)}")


def print_tokens(loop: LoopRun, loop_stats: dict[str, object], token_runs: list[OursRun], cases: int) -> None:
    print(f"\nprompt tokens per case ({cases} cases each; tokens = characters / 4, counted by the server)")
    print(f"{'protocol':<38} {'tokens/case':>11} {'not reusable':>12} {'calls/case':>10} "
          f"{'largest message (chars)':>24} {'reusable prefix':>16}")
    for run in token_runs:
        ok = [r for r in run.results if r.status == "ok"] or run.results
        mean = sum(r.input_tokens for r in ok) / max(1, len(ok))
        share = float(run.stats["reusable_share"])  # type: ignore[arg-type]
        print(f"{run.label.split(',')[0]:<38} {mean:>11.0f} {mean * (1 - share):>12.0f} "
              f"{run.calls / max(1, len(run.results)):>10.1f} {run.stats['largest_message_chars']:>24} {share:>16.1%}")
        roles = run.stats.get("roles") or {}
        if run.errors or "unknown" in roles:  # type: ignore[operator]
            print(f"  !! {len(run.errors)} attempt(s) in error; server saw roles {roles}")
    first = loop.cases[:cases]
    mean = sum(c.prompt_tokens for c in first) / max(1, len(first))
    share = float(loop_stats["reusable_share"])  # type: ignore[arg-type]
    print(f"{'sequential loop (upstream-shaped)':<38} {mean:>11.0f} {mean * (1 - share):>12.0f} "
          f"{loop.calls / max(1, len(loop.cases)):>10.1f} {loop_stats['largest_message_chars']:>24} {share:>16.1%}  "
          "(largest message and prefix share over all its cases)")
    print("not reusable: tokens/case x (1 - reusable prefix), roughly what a serving engine with prefix caching "
          "still has to compute")
    by = {run.label.split("(")[1].split(")")[0]: run.stats for run in token_runs}
    ours, theirs = by.get("clinicflow"), by.get("agentclinic")
    if ours and theirs:
        holds = ours["reusable_share"] > max(0.5, theirs["reusable_share"])  # type: ignore[operator]
        print("ours (clinicflow) sends the doctor an append-only message list (each call's messages extend the "
              "previous call's), not one growing user string: "
              f"{'confirmed by the reusable-prefix share' if holds else 'NOT confirmed by the reusable-prefix share'}")


def cores_and_load() -> str:
    """``2 CPU cores, load average 0.3``: what the figures were measured on (the benchmarks share this line)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{cores} CPU cores{load}"


def machine_notes(delay_ms: float) -> str:
    return (f"machine: {cores_and_load()}, Python {platform.python_version()}, httpx {httpx.__version__}; the "
            f"model server runs in its own process on the same cores, every answer after {delay_ms:g} ms")


# ---------------- main ----------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=100.0, help="the model server's delay per call")
    parser.add_argument("--cases", type=int, default=32, help="attempts per run")
    parser.add_argument("--turns", type=int, default=20, help="doctor turn budget")
    parser.add_argument("--concurrency-levels", default="1,8,32", help="comma-separated runner concurrency levels")
    parser.add_argument("--cases-file", type=Path, default=DEFAULT_CASES_FILE,
                        help="AgentClinic MedQA JSON lines (the demo cases when absent)")
    parser.add_argument("--token-cases", type=int, default=8, help="cases for the prompt-token comparison")
    parser.add_argument("--quick", action="store_true", help="4 cases, 2 for tokens, levels 1,4 (for tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases, args.token_cases, args.concurrency_levels = 4, 2, "1,4"
    try:
        args.levels = sorted({int(x) for x in args.concurrency_levels.split(",") if x.strip()})
    except ValueError:
        parser.error("--concurrency-levels takes integers, e.g. 1,8,32")
    if not args.levels or min(args.levels) < 1 or args.cases < 1 or args.turns < 1 or args.token_cases < 1:
        parser.error("--cases, --turns, --token-cases and every concurrency level must be at least 1")
    return args


async def _ours_all(
    args: argparse.Namespace, base_url: str, selection: Selection, work: Path
) -> tuple[list[OursRun], list[OursRun]]:
    """Every run of ours in one event loop, so the role models' connection pools are reused across runs."""
    models = role_models(base_url)
    warm = Selection(selection.cases[:1], 1, "warm-up")
    await run_ours(base_url, models, warm, "agentclinic", 1, args.turns, work / "warm-up")  # imports, first connections
    speed = [await run_ours(base_url, models, selection, "agentclinic", level, args.turns, work / f"c{level}")
             for level in args.levels]
    tokens = select_cases(args.token_cases, args.cases_file)
    level = min(args.token_cases, 8)
    token_runs = [await run_ours(base_url, models, tokens, protocol, level, args.turns, work / f"tokens-{protocol}")
                  for protocol in ("clinicflow", "agentclinic")]
    return speed, token_runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    selection = select_cases(args.cases, args.cases_file)
    with serve_model_server(args.delay_ms) as base_url, tempfile.TemporaryDirectory() as tmp:
        print(f"throughput benchmark: {selection.attempts} attempts ({selection.label}), at most {args.turns} turns, "
              f"every role on {base_url} answering after {args.delay_ms:g} ms")
        run_sequential(base_url, selection.cases[:1], args.turns)  # warm-up: imports, the first connection
        reset_stats(base_url)
        loop = run_sequential(base_url, selection.in_order(), args.turns)
        loop_stats = fetch_stats(base_url)
        undiagnosed = sum(c.diagnosis is None for c in loop.cases)
        print(f"sequential loop: {len(loop.cases)} cases, {loop.calls} calls, {loop.wall:.2f} s"
              + (f"; {undiagnosed} ended without a diagnosis" if undiagnosed else ""))
        speed, token_runs = asyncio.run(_ours_all(args, base_url, selection, Path(tmp)))
    print_speed(loop, speed, selection.attempts, args.delay_ms / 1000)
    print_targets(loop, speed)
    print_tokens(loop, loop_stats, token_runs, min(args.token_cases, len(loop.cases)))
    print(machine_notes(args.delay_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
