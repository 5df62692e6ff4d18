"""Orchestration overhead of the consultation graph, per turn and as a share of wall time.

A 20-turn consultation (the doctor never diagnoses early, so the budget forces the diagnosis on turn 20) runs with
chat models that answer instantly and with ones that sleep a fixed 200 ms per call, under the in-memory and the
SQLite checkpointer. Overhead = wall time - the time measured inside the model calls (a sleep overshoots its delay
by a millisecond or so; that belongs to the model, not to the orchestration). Targets: under 3 ms per turn with SQLite, under 2%
of wall time at 200 ms per call.

    python benchmarks/overhead.py [--turns 20] [--repeats 5] [--delay-ms 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agents.doctor import Doctor
from graphs.checkpointers import open_checkpointer
from graphs.consultation import build_consultation_graph, recursion_limit_for
from simulations.cases import get_demo_case
from simulations.clinic import SimulatedClinic
from simulations.measurement import MeasurementActor
from simulations.patient import PatientActor

DOCTOR_REPLY = json.dumps({
    "action": "ask",
    "text": "How long have you had these symptoms?",
    "differential": [{"diagnosis": "acute coronary syndrome", "probability": 0.6},
                     {"diagnosis": "pulmonary embolism", "probability": 0.2}],
    "rationale": "Timing narrows the differential.",
})


class FixedDelayChatModel(BaseChatModel):
    """Answers one fixed reply after a fixed delay, and counts its calls (benchmark only)."""

    reply: str
    delay_s: float = 0.0
    calls: int = 0
    seconds: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "fixed-delay"

    def _result(self) -> ChatResult:
        self.calls += 1
        usage = {"input_tokens": 10, "output_tokens": 10, "total_tokens": 20}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply, usage_metadata=usage))])

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        time.sleep(self.delay_s)
        return self._result()

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        started = time.perf_counter()
        await asyncio.sleep(self.delay_s)
        self.seconds += time.perf_counter() - started
        return self._result()


async def one_run(turns: int, delay_s: float, checkpoint: str | None) -> tuple[float, int, float]:
    case = get_demo_case("demo:chest-pain")
    doctor_model = FixedDelayChatModel(reply=DOCTOR_REPLY, delay_s=delay_s)
    patient_model = FixedDelayChatModel(reply="It started two days ago.", delay_s=delay_s)
    clinic = SimulatedClinic(case, PatientActor(patient_model, case), MeasurementActor(patient_model, case))
    async with open_checkpointer(checkpoint) as saver:
        graph = build_consultation_graph(Doctor(doctor_model), clinic, checkpointer=saver)
        config = {"configurable": {"thread_id": f"bench-{time.perf_counter_ns()}"},
                  "recursion_limit": recursion_limit_for(turns)}
        started = time.perf_counter()
        final = await graph.ainvoke({"case_id": case.id, "objective": clinic.opening(), "max_turns": turns}, config,
                                    durability="sync")
        wall = time.perf_counter() - started
    assert final["turn"] == turns and final["final_diagnosis"], "the consultation did not run its whole budget"
    return wall, doctor_model.calls + patient_model.calls, doctor_model.seconds + patient_model.seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=200.0)
    args = parser.parse_args()
    print(f"consultation of {args.turns} turns, median of {args.repeats} runs each")
    print(f"{'checkpointer':<12} {'model delay':>11} {'wall s':>8} {'calls':>6} {'overhead/turn ms':>17} {'share':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("memory", "sqlite"):
            for delay_ms in (0.0, args.delay_ms):
                runs = []
                for i in range(args.repeats + 1):
                    target = None if name == "memory" else str(Path(tmp) / f"ckpt-{delay_ms}.sqlite")
                    result = await one_run(args.turns, delay_ms / 1000, target)
                    if i:  # the first run warms imports and SQLite; it is not counted
                        runs.append(result)
                wall, calls, model_s = sorted(runs, key=lambda r: r[0] - r[2])[len(runs) // 2]
                overhead = max(wall - model_s, 0.0)
                print(f"{name:<12} {delay_ms:>9.0f}ms {wall:>8.3f} {calls:>6} "
                      f"{overhead / args.turns * 1000:>17.2f} {overhead / wall:>7.2%}")


if __name__ == "__main__":
    asyncio.run(main())
