"""One case attempt of a benchmark: its models wrapped for the run, the consultation, the score, the result line.

Every role's chat model is wrapped once per run (``RunModel``) and every attempt runs through one compiled graph;
within an attempt's ``attempt_scope`` the attempt's seed goes with each call, identical calls are served from the
run's cache, each endpoint's concurrency limit is respected, and a model failure is recorded. An attempt whose
consultation raised, or whose models failed on the way (the doctor degrades rather than raise, so its failures are
read from the wrappers), is an error result: kept with its reason and retried on resume.

Each attempt runs in its arm (simulations.arms): the single doctor, or the panel in one of its variants on the
reasoning model; benchmark runs never pause for a clinician (approval policy "none"). The result line carries the
arm, what the consultation cost, the tests refused for safety, the panel's failed role calls and the final
differential with a correctness flag per item (for the calibration report).

The imaging model is a role like the others (wrapped, cached, limited); the run's image store, image folder and
optional triage classifier are shared by every attempt. An image that cannot be had is not an error: the attempt
runs and its result says "unavailable".
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from agents.imaging import ImageClassifier
from graphs.consultation import build_consultation_graph
from simulations.arms import arm_setup
from simulations.bench.callcache import CallCache
from simulations.bench.models import AttemptCalls, EndpointLimits, RunModel, attempt_scope
from simulations.bench.plan import DEFAULT_DOCTOR_TOKENS, Attempt, BenchPlan
from simulations.bench.records import (
    AttemptError,
    AttemptResult,
    JudgeScore,
    RoleUsage,
    RubricScore,
    derive_seed,
    parse_bias,
)
from simulations.judge import exact_match
from simulations.leaks import leaking_findings
from simulations.session import ConsultationSetup, run_consultation
from simulations.textnorm import contains_phrase, fold
from tools.images import ImageStore

logger = logging.getLogger(__name__)
MAX_ERROR_CHARS = 2000


class AttemptContext:
    """What every attempt of one run shares: the wrapped role models, one compiled graph and its checkpointer, and
    where case images come from (the store that fetches and caches them, a folder of case images, a triage model)."""

    def __init__(
        self,
        plan: BenchPlan,
        run_id: str,
        role_models: Mapping[str, BaseChatModel],
        limits: EndpointLimits,
        cache: CallCache | None = None,
        checkpointer: BaseCheckpointSaver | None = None,
        *,
        image_store: ImageStore | None = None,
        image_dir: Path | None = None,
        download_images: bool = True,
        image_classifier: ImageClassifier | None = None,
    ) -> None:
        self.plan = plan
        self.run_id = run_id
        self.cache = cache
        self.image_store = image_store
        self.image_dir = image_dir
        self.download_images = download_images
        self.image_classifier = image_classifier
        config = plan.config
        if config.models.get("triage") and image_classifier is None:
            raise ValueError(f"the run names a triage model ({config.models['triage']}) but none was built: pass "
                             "image_classifier")
        self.models: dict[str, BaseChatModel] = {
            role: RunModel(
                inner=role_models[role], spec=spec, role=role, temperature=config.temperature,
                call_cache=cache, limiter=limits.semaphore(spec),
            )
            for role, spec in config.models.items()
            # The triage classifier is no chat model: it comes as image_classifier.
            if role in role_models and role != "triage"
        }
        # Attempts are redone whole after a crash, so by default checkpoints live in memory only as long as their
        # attempt; a shared store (Redis) keeps them, under its own expiry, for inspection from anywhere.
        self.keep_checkpoints = checkpointer is not None
        self.checkpointer = checkpointer if checkpointer is not None else InMemorySaver()
        self.graph = build_consultation_graph(checkpointer=self.checkpointer)


@dataclass
class AttemptOutcome:
    result: AttemptResult
    transcript: dict[str, Any] | None
    traceback: str | None = None  # for errors: where it happened, for the run's error log


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def run_attempt(ctx: AttemptContext, attempt: Attempt) -> AttemptOutcome:
    """Run one attempt to a result; never raises for a failing model or consultation (only on cancellation)."""
    config = ctx.plan.config
    case = attempt.case
    seed = derive_seed(config.seed, case.id, attempt.bias, attempt.repeat)
    calls = AttemptCalls()
    doctor_bias, patient_bias = parse_bias(attempt.bias)
    setup = ConsultationSetup(
        case=case,
        models=ctx.models,
        specs=dict(config.models),
        max_turns=config.max_turns,
        measurement_mode=config.measurement_mode,
        doctor_max_new_tokens=config.max_new_tokens.get("reasoning", DEFAULT_DOCTOR_TOKENS),
        case_ref=case.id,
        protocol=config.protocol,
        doctor_bias=doctor_bias,
        patient_bias=patient_bias,
        rubric=config.rubric,
        image_store=ctx.image_store,
        image_dir=ctx.image_dir,
        image_setting=config.image_setting,
        image_classifier=ctx.image_classifier,
        download_images=ctx.download_images,
        **arm_setup(attempt.arm, budget=config.budget, members=config.ensemble_members,
                    aggregate=config.ensemble_aggregate),
    )
    started_at, started = _now(), time.perf_counter()
    base = {
        "run_id": ctx.run_id, "attempt": attempt.key, "case_id": case.id, "dataset": case.dataset,
        "bias": attempt.bias, "repeat": attempt.repeat, "seed": seed, "protocol": config.protocol,
        "measurement_mode": config.measurement_mode, "correct_diagnosis": case.correct_diagnosis,
        "case_leak_prone": bool(leaking_findings(case)), "started_at": started_at, "arm": attempt.arm,
        "budget": setup.budget,
    }
    thread_id = f"{ctx.run_id}/{attempt.key}"
    try:
        with attempt_scope(seed, calls):
            transcript = await run_consultation(
                setup, checkpointer=ctx.checkpointer, thread_id=thread_id, graph=ctx.graph, durability="exit"
            )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded against the attempt (with its traceback); the run goes on
        failure = calls.errors[0] if calls.errors else f"{type(exc).__name__}: {exc}"
        result = AttemptResult(
            **base, status="error", error=AttemptError(type=type(exc).__name__, message=failure[:MAX_ERROR_CHARS]),
            wall_seconds=round(time.perf_counter() - started, 3), cache_hits=calls.hits,
            cache_misses=calls.misses, finished_at=_now(),
        )
        return AttemptOutcome(result, None, traceback.format_exc())
    finally:
        if not ctx.keep_checkpoints:
            await ctx.checkpointer.adelete_thread(thread_id)
    transcript.update(run_id=ctx.run_id, attempt=attempt.key, bias=attempt.bias, repeat=attempt.repeat, seed=seed)
    result = result_from_transcript(base, transcript, calls)
    result.wall_seconds = round(time.perf_counter() - started, 3)
    return AttemptOutcome(result, transcript)


def result_from_transcript(base: Mapping[str, Any], transcript: Mapping[str, Any], calls: AttemptCalls) -> AttemptResult:
    """The result line of a finished consultation; a model failure seen by the wrappers makes it an error."""
    outcome = transcript.get("outcome") or {}
    totals = transcript.get("totals") or {}
    verdict = transcript.get("verdict")
    rubric = transcript.get("rubric")
    images = transcript.get("images") or {}
    error = None
    if calls.failure is not None:
        error = AttemptError(type=type(calls.failure).__name__, message="; ".join(calls.errors)[:MAX_ERROR_CHARS])
    judge = JudgeScore(
        correct=verdict.get("correct"), method=verdict.get("method", "?"), raw=verdict.get("raw") or "",
        upstream_correct=verdict.get("upstream_correct"),
    ) if verdict else None
    return AttemptResult(
        **base,
        status="error" if error else "ok",
        error=error,
        final_diagnosis=outcome.get("final_diagnosis"),
        ended_by=outcome.get("ended_by"),
        verdict=judge,
        rubric=RubricScore(**rubric) if rubric else None,
        correct=judge.correct if judge else None,
        turns=totals.get("turns", 0),
        questions=totals.get("questions", 0),
        tests=totals.get("tests", 0),
        tests_ordered=[t.get("name", "") for t in transcript.get("tests_ordered", [])],
        leak=bool(outcome.get("leak")),
        leak_sources=list(outcome.get("leak_sources", [])),
        image_status=images.get("status"),
        image_reads=len(images.get("reads") or []),
        usage={role: RoleUsage(**usage) for role, usage in (totals.get("per_role") or {}).items()},
        input_tokens=totals.get("input_tokens", 0),
        output_tokens=totals.get("output_tokens", 0),
        model_seconds=totals.get("model_seconds", 0.0),
        cache_hits=calls.hits,
        cache_misses=calls.misses,
        finished_at=_now(),
        **_cost_fields(transcript),
        differential=final_differential(transcript, base.get("correct_diagnosis", ""),
                                        judge.correct if judge else None),
    )


def _cost_fields(transcript: Mapping[str, Any]) -> dict[str, Any]:
    """What the consultation cost (its ledger), the tests it refused and the panel's unusable role calls."""
    cost = transcript.get("cost") or {}
    return {
        "cost": float(cost.get("total", 0.0)),
        "cost_visits": int(cost.get("visits", 0)),
        "cost_tests": float(cost.get("tests_total", 0.0)),
        "unmatched_tests": [str(name) for name in cost.get("unmatched") or []],
        "blocked_orders": len(transcript.get("blocked") or []),
        "panel_failed_roles": sum(not note.get("ok", True) for note in transcript.get("panel") or []),
    }


def final_differential(transcript: Mapping[str, Any], correct_diagnosis: str,
                       verdict: bool | None) -> list[dict[str, Any]]:
    """The consultation's last differential, each item with whether it names the correct diagnosis.

    The item naming the final diagnosis takes the judge's verdict (the judge read it against the case); every other
    item, and that one when the judge gave no verdict, a deterministic match: the judge's own exact-match rule
    (simulations.judge.exact_match: the correct diagnosis as whole words, as the leak check finds it, in one
    spelling, unambiguous abbreviations written out, no hedging), so "Acute inferior myocardial infarction" and
    "subarachnoid haemorrhage" count for "Myocardial infarction" and "Subarachnoid hemorrhage", "Angina" does not.
    """
    snapshots = transcript.get("differentials") or []
    items = list(snapshots[-1].get("items") or []) if snapshots else []
    final = (transcript.get("outcome") or {}).get("final_diagnosis")
    judged = _final_item(items, final) if verdict is not None else None
    return [
        {
            "diagnosis": str(item.get("diagnosis", "")),
            "probability": float(item.get("probability", 0.0)),
            "correct": verdict if index == judged else exact_match(correct_diagnosis,
                                                                   str(item.get("diagnosis", ""))),
        }
        for index, item in enumerate(items)
    ]


def _final_item(items: list[Mapping[str, Any]], final: str | None) -> int | None:
    """The index of the item that names ``final``: the same name (folded) first, else the first that contains it or
    is contained in it as whole words; None when none does."""
    if not final or not fold(final):
        return None
    names = [str(item.get("diagnosis", "")) for item in items]
    for index, name in enumerate(names):
        if fold(name) == fold(final):
            return index
    for index, name in enumerate(names):
        if contains_phrase(name, final) or contains_phrase(final, name):
            return index
    return None
