"""One consultation from start to verdict: the simulated (or interactive) clinic, the graph, the judge, the transcript.

The command line and the benchmark runner both call ``run_consultation``. It streams each dialogue entry to a
callback as it happens, pauses for a person when the environment is interactive, and returns the transcript.
A consultation interrupted at any point resumes from its last checkpoint with ``resume=True`` and the same thread.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from graphs.consultation import ConsultationParts, build_consultation_graph, recursion_limit_for
from graphs.environment import Environment
from graphs.interactive import InteractiveEnvironment, InteractiveRequest
from graphs.record_lookup import RecordLookup
from graphs.state import DialogueEntry
from simulations.cases import Case
from simulations.leaks import leaks_diagnosis
from simulations.protocols import Protocol, build_doctor, build_environment
from simulations.scoring import score_consultation
from simulations.transcript import TRANSCRIPT_VERSION, totals_of

EntryCallback = Callable[[DialogueEntry], None]
PersonCallback = Callable[[InteractiveRequest], Awaitable[str]]


class ConsultationPaused(Exception):
    """The interactive consultation waits for a person's answer and no one was there to give it."""

    def __init__(self, thread_id: str, request: InteractiveRequest) -> None:
        super().__init__(f"consultation {thread_id} is waiting for: {request['prompt']}")
        self.thread_id = thread_id
        self.request = request


@dataclass
class ConsultationSetup:
    """What a consultation needs: the case, a chat model and its spec per role, and the rules."""

    case: Case
    models: Mapping[str, BaseChatModel]
    specs: Mapping[str, str]
    max_turns: int = 20
    measurement_mode: str = "strict"
    interactive: bool = False
    doctor_max_new_tokens: int = 384
    case_ref: str = ""
    # The patient's health record, when the case names a FHIR patient and a server is configured.
    record: RecordLookup | None = None
    # Where the record lives ({"base_url": ..., "patient": ...}), kept in the checkpoint so `--resume` can reopen
    # it; never credentials.
    record_origin: dict[str, Any] | None = None
    # "clinicflow": our structured doctor and actors; "agentclinic": upstream's tag protocol, reproduced.
    protocol: Protocol = "clinicflow"
    doctor_bias: str | None = None
    patient_bias: str | None = None
    # Score with the 5-point rubric judge beside the yes/no verdict (one more judge call).
    rubric: bool = False

    def environment(self) -> Environment:
        if self.interactive:
            return InteractiveEnvironment(self.case.objective)
        return build_environment(
            self.protocol, self.case, self.models, measurement_mode=self.measurement_mode,
            patient_bias=self.patient_bias,
        )

    def doctor(self) -> Any:
        """The doctor role this protocol plays (ours, or upstream's tag-following one)."""
        return build_doctor(
            self.protocol, self.models["reasoning"], bias=self.doctor_bias, max_new_tokens=self.doctor_max_new_tokens
        )

    def origin(self) -> dict[str, Any]:
        return {
            "case_ref": self.case_ref or self.case.id,
            "interactive": self.interactive,
            "max_turns": self.max_turns,
            "measurement_mode": self.measurement_mode,
            "specs": dict(self.specs),
            "record": dict(self.record_origin) if self.record_origin else None,
            "protocol": self.protocol,
            "doctor_bias": self.doctor_bias,
            "patient_bias": self.patient_bias,
        }


@cache
def _package_version() -> str:
    try:
        return version("clinicflow")
    except PackageNotFoundError:
        return "unknown"


async def saved_origin(checkpointer: BaseCheckpointSaver, thread_id: str) -> dict[str, Any] | None:
    """What started consultation ``thread_id`` (see ``ConsultationSetup.origin``), or None if it is unknown."""
    saved = await checkpointer.aget_tuple({"configurable": {"thread_id": thread_id}})
    if saved is None:
        return None
    return saved.checkpoint["channel_values"].get("origin")


async def run_consultation(
    setup: ConsultationSetup,
    *,
    checkpointer: BaseCheckpointSaver,
    thread_id: str,
    resume: bool = False,
    on_entry: EntryCallback | None = None,
    ask_person: PersonCallback | None = None,
    graph: Any = None,
    durability: str = "sync",
) -> dict[str, Any]:
    """Run (or resume) one consultation to its verdict and return the transcript as a JSON-ready dict.

    ``graph`` is a consultation graph compiled once with ``checkpointer`` (a benchmark runs every case through one);
    without it, one is compiled for this consultation. ``durability="sync"`` checkpoints every step before the next
    starts (what resuming needs); a benchmark, which redoes an interrupted attempt whole, passes ``"exit"``.
    """
    started = time.perf_counter()
    environment = setup.environment()
    parts = ConsultationParts(setup.doctor(), environment, setup.record)
    if graph is None:
        graph = build_consultation_graph(checkpointer=checkpointer)
    config: dict[str, Any] = {
        "configurable": {"thread_id": thread_id},
        "recursion_limit": recursion_limit_for(setup.max_turns),
    }

    graph_input: Any = None
    if resume:
        snapshot = await graph.aget_state(config)
        if not snapshot.values:
            raise LookupError(f"no checkpoint found for consultation {thread_id}")
        for entry in snapshot.values.get("dialogue", []):
            if on_entry:
                on_entry(entry)
    else:
        graph_input = {
            "case_id": setup.case.id,
            "objective": environment.opening(),
            "max_turns": setup.max_turns,
            "origin": setup.origin(),
        }

    # Streaming None continues from the last checkpoint: a crashed run picks up its next step, and a paused one
    # re-enters the waiting node, which asks again (the interactive environment does nothing before it asks).
    while True:
        await _stream(graph, graph_input, config, parts, on_entry, durability)
        snapshot = await graph.aget_state(config)
        if not snapshot.interrupts:
            break
        request: InteractiveRequest = snapshot.interrupts[0].value
        if ask_person is None:
            raise ConsultationPaused(thread_id, request)
        graph_input = Command(resume=await ask_person(request))

    state = snapshot.values
    return await _transcript(setup, state, thread_id, environment.mode, time.perf_counter() - started)


async def _stream(
    graph: Any,
    graph_input: Any,
    config: dict[str, Any],
    parts: ConsultationParts,
    on_entry: EntryCallback | None,
    durability: str = "sync",
) -> None:
    # "sync" durability writes each checkpoint before the next step starts: a crash or Ctrl-C loses at most the
    # step in flight (the default writes in the background, and an aborted run can drop several steps).
    stream = graph.astream(graph_input, config, context=parts, stream_mode="updates", durability=durability)
    async for chunk in stream:
        for node, update in chunk.items():
            if node.startswith("__") or not isinstance(update, dict):
                continue
            for entry in update.get("dialogue", []):
                if on_entry:
                    on_entry(entry)


async def _transcript(
    setup: ConsultationSetup, state: Mapping[str, Any], thread_id: str, environment_mode: str, wall: float
) -> dict[str, Any]:
    case = setup.case
    diagnosis = state.get("final_diagnosis")
    dialogue = list(state.get("dialogue", []))
    score = await score_consultation(
        setup.protocol, case, dialogue, diagnosis, setup.models.get("judge"), rubric=setup.rubric
    )
    revealed = [e["text"] for e in dialogue if e["role"] == "measurement"]
    return {
        "version": TRANSCRIPT_VERSION,
        "clinicflow": _package_version(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "thread_id": thread_id,
        "protocol": setup.protocol,
        "biases": {"doctor": setup.doctor_bias, "patient": setup.patient_bias},
        "case": {
            "id": case.id,
            "ref": setup.case_ref or case.id,
            "dataset": case.dataset,
            "objective": case.objective,
            "correct_diagnosis": case.correct_diagnosis,
        },
        "environment": environment_mode,
        "record": setup.record.patient if setup.record is not None else None,
        "record_summary": state.get("record_summary"),
        "max_turns": setup.max_turns,
        "models": dict(setup.specs),
        "dialogue": dialogue,
        "findings": state.get("findings", []),
        "differentials": state.get("differentials", []),
        "tests_ordered": state.get("tests_ordered", []),
        "outcome": {
            "final_diagnosis": diagnosis,
            "ended_by": state.get("ended_by"),
            "leak": any(leaks_diagnosis(case, text) for text in revealed),
            "leak_sources": sorted({f["source"] for f in state.get("findings", [])
                                    if f["source"].startswith("test:") and leaks_diagnosis(case, f["text"])}),
        },
        "verdict": score.verdict,
        "rubric": score.rubric,
        "totals": totals_of(dialogue, score.judge_usage),
        "wall_seconds": round(wall, 3),
    }
