"""Per-turn latency of the diagnostic panel against the single doctor, every model call on the 100 ms test server.

Both doctors run the same built-in cases through ``simulations.session.run_consultation`` (one consultation at a
time, in-memory checkpoints), every role (doctor or panel roles, patient, measurement, judge) on
`model_server.py` in its own process, which answers each request after a fixed delay from a six-turn script (ask,
ask, test, ask, test, diagnose) that the single doctor and the panel's roles follow alike, so both make the same
moves and the difference is how a turn is decided:

- single: one doctor call per turn;
- panel (variant no-budget): the hypothesis call, then test chooser, challenger, stewardship and checklist side by
  side in one parallel step, then the consensus (no model call).

Measured from the times the dialogue entries stream out: the deliberation of a turn runs from the observation that
answered the previous turn to the doctor's (or consensus's) entry, and the whole turn from one doctor entry to the
next (so the first turn, which includes start-up, is left out). Calls per turn come from the server's counters.
The panel's parallel step is timed on the client by a callback on the reasoning model: from the first of the four
roles' calls starting to the last one ending, each turn. The target (printed as met / NOT met, never asserted) is
that the step costs about one model call of wall time (at most 1.5 delays), not four; the graph's own steps around
it (hypothesis -> four role nodes -> consensus, each checkpointed) show in the deliberation beside it.

    python benchmarks/panel_latency.py [--delay-ms 100] [--cases 7] [--turns 8] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from model_server import fetch_stats, reset_stats, serve_model_server
from throughput import machine_notes

from agents.backends import build_chat_model
from graphs.consultation import build_consultation_graph
from simulations.cases import Case, demo_cases
from simulations.session import ConsultationSetup, run_consultation

ROLES = ("reasoning", "patient", "measurement", "judge")
MODES = ("single", "panel")
# The parallel step should cost about one model call of wall time; four calls in a row would be 4.
TARGET_PARALLEL_CALLS = 1.5


PARALLEL_ROLES = ("test_chooser", "challenger", "stewardship", "checklist")


class CallClock(BaseCallbackHandler):
    """Times every call of the model it is attached to, with the panel role it is for (the system message's first
    line, ``Role: <role>``; "doctor" otherwise)."""

    run_inline = True  # called on the event loop as the call starts and ends, not from a thread pool

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []  # (role, start, end), in order of ending
        self._open: dict[UUID, tuple[str, float]] = {}

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID,
                            **kwargs: Any) -> None:
        first = str(messages[0][0].content) if messages and messages[0] else ""
        head = first.splitlines()[0] if first else ""
        role = head.removeprefix("Role:").strip() if head.startswith("Role:") else "doctor"
        self._open[run_id] = (role, time.perf_counter())

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id)

    def _close(self, run_id: UUID) -> None:
        if run_id in self._open:
            role, start = self._open.pop(run_id)
            self.calls.append((role, start, time.perf_counter()))

    def durations(self, role: str) -> list[float]:
        return [end - start for name, start, end in self.calls if name == role]

    def parallel_steps(self) -> list[tuple[float, float]]:
        """(wall, summed call time) of each parallel step: the role calls between one hypothesis call and the
        next, from the first start to the last end."""
        steps: list[list[tuple[float, float]]] = []
        for role, start, end in sorted(self.calls, key=lambda call: call[1]):
            if role == "hypothesis" or not steps:
                steps.append([])
            if role in PARALLEL_ROLES:
                steps[-1].append((start, end))
        return [(max(e for _, e in step) - min(s for s, _ in step), sum(e - s for s, e in step))
                for step in steps if step]


@dataclass
class TurnTimes:
    """One consultation's timings, from the dialogue entries as they streamed out."""

    deliberation: list[float] = field(default_factory=list)  # observation -> doctor entry, per turn after the first
    turn: list[float] = field(default_factory=list)  # doctor entry -> next doctor entry
    parallel_wall: list[float] = field(default_factory=list)  # first start to last end of the four roles' calls
    parallel_sum: list[float] = field(default_factory=list)  # the four roles' call times added up
    decision_calls: list[float] = field(default_factory=list)  # the doctor's calls, or the panel's hypothesis calls
    doctor_turns: int = 0
    final_diagnosis: str | None = None


class EntryClock:
    """``on_entry`` callback: the time each dialogue entry arrives, by role."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, str, int]] = []

    def __call__(self, entry: Mapping[str, Any]) -> None:
        self.marks.append((time.perf_counter(), str(entry.get("role")), int(entry.get("turn") or 0)))

    def times(self) -> TurnTimes:
        found = TurnTimes()
        last_observation: float | None = None
        last_doctor: float | None = None
        for when, role, _turn in self.marks:
            if role != "doctor":
                last_observation = when
                continue
            found.doctor_turns += 1
            if last_observation is not None and last_doctor is not None and last_observation > last_doctor:
                found.deliberation.append(when - last_observation)
            if last_doctor is not None:
                found.turn.append(when - last_doctor)
            last_doctor = when
        return found


@dataclass
class ModeRun:
    mode: str
    times: list[TurnTimes]
    stats: dict[str, Any]
    wall: float

    def all(self, name: str) -> list[float]:
        return [value for t in self.times for value in getattr(t, name)]

    @property
    def turns(self) -> int:
        return sum(t.doctor_turns for t in self.times)

    def deliberation_calls(self) -> int:
        roles: Mapping[str, int] = self.stats.get("roles") or {}
        return sum(n for role, n in roles.items() if role == "doctor" or role.startswith("panel:"))

    def other_calls(self) -> int:
        return int(self.stats.get("requests") or 0) - self.deliberation_calls()


def role_models(base_url: str, clock: CallClock) -> dict[str, BaseChatModel]:
    """A model per role on the server; the reasoning model (the doctor, or every panel role) timed by ``clock``."""
    spec = f"openai:bench@{base_url}"
    models = {role: build_chat_model(spec, timeout_s=30.0, max_retries=0) for role in ROLES}
    models["reasoning"].callbacks = [clock]
    return models


def setup_for(case: Case, models: dict[str, BaseChatModel], base_url: str, mode: str,
              max_turns: int) -> ConsultationSetup:
    specs = {role: f"openai:bench@{base_url}" for role in ROLES}
    return ConsultationSetup(case=case, models=models, specs=specs, max_turns=max_turns, doctor_mode=mode,
                             doctor_max_new_tokens=256)


async def run_mode(base_url: str, cases: Sequence[Case], mode: str, max_turns: int) -> ModeRun:
    warm_clock = CallClock()
    models = role_models(base_url, warm_clock)
    saver = InMemorySaver()
    graph = build_consultation_graph(checkpointer=saver)
    # Warm-up: imports, the first connections, the graph's first steps; not measured.
    await run_consultation(setup_for(cases[0], models, base_url, mode, max_turns), checkpointer=saver,
                           thread_id=f"warm-{mode}", graph=graph)
    reset_stats(base_url)
    started = time.perf_counter()
    found: list[TurnTimes] = []
    for index, case in enumerate(cases):
        clock, calls = EntryClock(), CallClock()
        models["reasoning"].callbacks = [calls]
        transcript = await run_consultation(
            setup_for(case, models, base_url, mode, max_turns), checkpointer=saver,
            thread_id=f"{mode}-{index}", graph=graph, on_entry=clock)
        times = clock.times()
        times.final_diagnosis = (transcript.get("outcome") or {}).get("final_diagnosis")
        steps = calls.parallel_steps()
        times.parallel_wall = [wall for wall, _ in steps]
        times.parallel_sum = [summed for _, summed in steps]
        times.decision_calls = calls.durations("hypothesis" if mode == "panel" else "doctor")
        found.append(times)
    return ModeRun(mode, found, fetch_stats(base_url), time.perf_counter() - started)


def _ms(values: Sequence[float], how: str = "median") -> str:
    if not values:
        return "-"
    value = statistics.median(values) if how == "median" else statistics.fmean(values)
    return f"{value * 1000:.0f}"


def _ratio(a: Sequence[float], b: Sequence[float]) -> float:
    return statistics.median(a) / statistics.median(b) if a and b and statistics.median(b) > 0 else float("nan")


def print_table(runs: Mapping[str, ModeRun], delay_s: float) -> None:
    print(f"\n{'doctor':<8} {'cases':>5} {'turns':>5} {'turn ms':>8} {'(mean)':>7} {'deliberation ms':>15} "
          f"{'(mean)':>7} {'decision calls/turn':>19} {'other calls/turn':>16} {'wall s':>7}")
    for run in runs.values():
        turns = max(1, run.turns)
        print(f"{run.mode:<8} {len(run.times):>5} {run.turns:>5} {_ms(run.all('turn')):>8} "
              f"{_ms(run.all('turn'), 'mean'):>7} {_ms(run.all('deliberation')):>15} "
              f"{_ms(run.all('deliberation'), 'mean'):>7} {run.deliberation_calls() / turns:>19.1f} "
              f"{run.other_calls() / turns:>16.1f} {run.wall:>7.2f}")
        undiagnosed = sum(t.final_diagnosis is None for t in run.times)
        if undiagnosed:
            print(f"  !! {undiagnosed} consultation(s) ended without a diagnosis")
    single, panel = runs["single"], runs["panel"]
    print(f"\nratio panel/single (medians): turn {_ratio(panel.all('turn'), single.all('turn')):.2f}x, "
          f"deliberation {_ratio(panel.all('deliberation'), single.all('deliberation')):.2f}x; "
          f"decision calls per turn {panel.deliberation_calls() / max(1, panel.turns):.1f} against "
          f"{single.deliberation_calls() / max(1, single.turns):.1f}")
    walls, sums = panel.all("parallel_wall"), panel.all("parallel_sum")
    if walls:
        calls = statistics.median(walls) / delay_s
        print(f"parallel step (test chooser, challenger, stewardship, checklist), {len(walls)} steps: median "
              f"{_ms(walls)} ms of wall time (max {max(walls) * 1000:.0f}) for four calls taking "
              f"{_ms(sums)} ms together: {calls:.2f} model calls of wall time")
        print(f"target: the parallel step costs about one model call (<= {TARGET_PARALLEL_CALLS:g} x "
              f"{delay_s * 1000:g} ms), not four: {'met' if calls <= TARGET_PARALLEL_CALLS else 'NOT met'}")
        rest = {run.mode: statistics.median(run.all("deliberation")) - statistics.median(run.all("decision_calls"))
                - (statistics.median(walls) if run.mode == "panel" else 0.0)
                for run in runs.values() if run.all("deliberation") and run.all("decision_calls")}
        if len(rest) == len(runs):
            print("outside the model calls per deliberation (graph steps, checkpoints, parsing, consensus): "
                  + ", ".join(f"{mode} {value * 1000:.0f} ms" for mode, value in rest.items()))
    else:
        print("!! no parallel step was timed: did the panel run?")
    print("turn: one doctor (or consensus) entry to the next, with the patient's or laboratory's answer between; "
          "deliberation: that answer to the decision; decision calls: doctor or panel-role requests; other: patient, "
          "measurement and judge requests (per doctor turn)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=100.0, help="the model server's delay per call")
    parser.add_argument("--cases", type=int, default=len(demo_cases()), help="built-in cases per doctor")
    parser.add_argument("--turns", type=int, default=8, help="turn budget per consultation (the script takes 6)")
    parser.add_argument("--quick", action="store_true", help="2 cases (for tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases = 2
    if args.cases < 1 or args.turns < 2 or args.delay_ms <= 0:
        parser.error("--cases must be at least 1, --turns at least 2 and --delay-ms positive")
    return args


async def _all(base_url: str, cases: Sequence[Case], turns: int) -> dict[str, ModeRun]:
    return {mode: await run_mode(base_url, cases, mode, turns) for mode in MODES}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    every = demo_cases()
    cases = [every[i % len(every)] for i in range(args.cases)]
    with serve_model_server(args.delay_ms) as base_url:
        print(f"panel latency: {len(cases)} built-in cases per doctor, at most {args.turns} turns, every role on "
              f"{base_url} answering after {args.delay_ms:g} ms")
        runs = asyncio.run(_all(base_url, cases, args.turns))
    print_table(runs, args.delay_ms / 1000)
    print(machine_notes(args.delay_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
