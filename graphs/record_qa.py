"""Question answering over a patient's record: the EHR-navigator pattern with dates, references and a requery.

```
resolve_dates -> manifest -> plan -> fetch --found, or nothing to widen--> follow_references -> answer
                                      ^  |                                                        |
                                      |  +--empty, first time--> requery                   check_citations -> END
                                      +------------------------------+
```
- ``resolve_dates``: the question's time phrase becomes a window against the stated ``now`` (``resolve_window``).
- ``manifest``: one light fetch of the patient's resources (``elements`` only), summarised per type and code.
- ``plan``: the navigator picks types, codes and dates; only the catalog's types and codes survive.
- ``fetch``: one search per planned type (per code for "latest" questions) with ``patient``, ``ge``/``le`` from
  the window, codes, ``_sort`` newest first and ``_count``, run concurrently (``max_concurrency``).
- ``requery``: once, when the first fetch found nothing: drop the codes, else the dates (``widening_for``).
- ``follow_references``: resolve the relative references facts need (a prescription's Medication, an
  Observation's encounter), at most ``max_follow``; shown beside the facts that point to them.
- ``answer``: the navigator answers from the fact lines (quoted data), citing ``[Type/id]``.
- ``check_citations``: citations of resources not fetched are removed and listed; uncited sentences flagged.

The graph writes every search parameter itself: record text and model output can choose among the patient's own
types and codes, never a URL, a parameter or a write. Store errors on one search are recorded and the answer is
made from the rest (``RecordAnswer.errors``); a manifest fetch that fails raises ``RecordStoreError``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Checkpointer

from agents.navigator import (
    DateWindow,
    Fact,
    FetchPlan,
    Navigator,
    StepCost,
    check_citations,
    resolve_window,
)
from graphs.record_fetch import (
    MANIFEST_ELEMENTS,
    MANIFEST_TYPES,
    as_of,
    catalog_from,
    fetch_requests,
    focus_manifest,
    references_to_follow,
    unique,
    widening_for,
)
from graphs.record_qa_state import (
    FactEntry,
    FollowedEntry,
    LinkEntry,
    RecordAnswer,
    RecordQaInput,
    RecordQaOutput,
    RecordQaState,
    RequestEntry,
    StepEntry,
)
from graphs.record_store import RecordStore, RecordStoreError
from tools.records import build_manifest, resource_line
from tools.records.dates import day as day_text

__all__ = ["RecordAnswer", "ask_record", "build_record_qa_graph", "record_qa_mermaid", "route_after_fetch"]

T = TypeVar("T")
_ANNOTATION_LIMIT = 100


def _today(now: str | date | datetime | None) -> date:
    if now is None or now == "":
        return date.today()
    if isinstance(now, datetime):
        return now.date()
    if isinstance(now, date):
        return now
    return datetime.fromisoformat(now).date() if "T" in now else date.fromisoformat(now)


def _window(state: RecordQaState) -> DateWindow:
    return DateWindow.model_validate(state["window"])


def _plan(state: RecordQaState) -> FetchPlan:
    return FetchPlan.model_validate({"fetches": state.get("plan") or []})


def route_after_fetch(state: RecordQaState) -> Literal["requery", "follow_references"]:
    """Requery once when the first fetch found nothing and the plan can be widened; else go on."""
    if state.get("facts") or state.get("widened") is not None:
        return "follow_references"
    return "requery" if widening_for(_plan(state), _window(state)) is not None else "follow_references"


async def _bounded(calls: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[tuple[T | None, str | None]]:
    """Run ``calls`` concurrently, at most ``limit`` at a time: (result, None) or (None, store error text)."""
    gate = asyncio.Semaphore(limit)
    results: list[tuple[T | None, str | None]] = [(None, None)] * len(calls)

    async def one(index: int, call: Callable[[], Awaitable[T]]) -> None:
        async with gate:
            try:
                results[index] = (await call(), None)
            except RecordStoreError as exc:
                results[index] = (None, f"{type(exc).__name__}: {exc}")

    async with asyncio.TaskGroup() as group:
        for index, call in enumerate(calls):
            group.create_task(one(index, call))
    return results


def _step(step: Literal["plan", "answer"], cost: StepCost) -> StepEntry:
    return {
        "step": step,
        "calls": cost.calls,
        "input_tokens": cost.input_tokens,
        "output_tokens": cost.output_tokens,
        "seconds": cost.seconds,
        "model": cost.model,
        "degraded": cost.degraded,
        "reason": cost.reason,
        "error": cost.error,
    }


def _facts_for_answer(state: RecordQaState) -> list[Fact]:
    """Fact lines newest first (undated last), each with the followed resources it points to appended."""
    followed = {f["reference"]: f for f in state.get("followed") or []}
    notes: dict[str, list[str]] = {}
    for link in state.get("links") or []:
        target = followed.get(link["target"])
        if target is not None:
            label = link["field"].removesuffix("Reference")
            notes.setdefault(link["source"], []).append(f"{label} [{target['reference']}] {target['text']}")
    entries = sorted(state.get("facts") or [], key=lambda f: f["day"] or "", reverse=True)
    entries.sort(key=lambda f: f["day"] is None)
    return [
        Fact(
            reference=f["reference"],
            line="; ".join([f["line"], *unique(notes.get(f["reference"], []))]),
            when=date.fromisoformat(f["day"]) if f["day"] else None,
        )
        for f in entries
    ]


def _plan_source(step: StepEntry | None) -> Literal["model", "fallback", "none"]:
    if step is not None and step["degraded"]:
        return "fallback"
    return "model" if step is not None and step["calls"] else "none"


def _result(state: RecordQaState) -> RecordAnswer:
    facts = state.get("facts") or []
    followed = state.get("followed") or []
    versions = {f["reference"]: f["version"] for f in [*facts, *followed]}
    check = check_citations(state.get("draft") or "", versions)
    steps = state.get("steps") or []
    plan_steps = [s for s in steps if s["step"] == "plan"]
    requests = state.get("requests") or []
    return RecordAnswer(
        patient_id=state["patient_id"],
        question=state["question"],
        answer=check.text,
        citations=check.used,
        sources=[f"{ref}/_history/{versions[ref]}" if versions[ref] else ref for ref in check.used],
        dropped_citations=check.dropped,
        # With no facts there was nothing to cite: the "nothing found" sentence is not an unsupported claim.
        unsupported_sentences=check.unsupported if facts else [],
        fact_count=len(facts) + len(followed),
        types_fetched=unique(r["resource_type"] for r in requests if r["round"] < 2),
        window=_window(state),
        requeried=state.get("widened") is not None,
        widened=state.get("widened"),
        plan_source=_plan_source(plan_steps[-1] if plan_steps else None),
        degraded=any(s["degraded"] for s in steps),
        model_calls=sum(s["calls"] for s in steps),
        input_tokens=sum(s["input_tokens"] for s in steps),
        output_tokens=sum(s["output_tokens"] for s in steps),
        model_seconds=sum(s["seconds"] for s in steps),
        model=next((s["model"] for s in reversed(steps) if s["model"]), None),
        store_requests=len(requests),
        errors=unique(
            [f"{r['resource_type']}: {r['error']}" for r in requests if r["error"]]
            + [f"{s['step']} model: {s['error']}" for s in steps if s["error"]]
        ),
    )


def build_record_qa_graph(
    navigator: Navigator,
    store: RecordStore,
    *,
    checkpointer: Checkpointer = None,
    max_concurrency: int = 8,
    max_follow: int = 12,
    max_per_type: int = 50,
    manifest_codes: int = 15,
) -> Any:
    """Compile the record question-answering graph (nothing is built at import time).

    ``max_concurrency`` bounds simultaneous store requests; ``max_follow`` the references followed per question;
    ``max_per_type`` the resources per search (``_count``); ``manifest_codes`` the codes per type the plan sees.
    """
    if min(max_concurrency, max_per_type, manifest_codes) < 1 or max_follow < 0:
        raise ValueError("max_concurrency, max_per_type and manifest_codes must be at least 1, max_follow >= 0")

    async def resolve_dates(state: RecordQaState) -> dict[str, Any]:
        today = _today(state.get("now"))
        window = resolve_window(state["question"], today)
        cleared: dict[str, Any] = dict.fromkeys(("facts", "links", "followed", "requests", "steps"))
        return {"today": today.isoformat(), "window": window.model_dump(mode="json"), "widened": None, **cleared}

    async def manifest(state: RecordQaState) -> dict[str, Any]:
        resources = await store.patient_resources(state["patient_id"], MANIFEST_TYPES, elements=MANIFEST_ELEMENTS)
        built = build_manifest(as_of(resources, date.fromisoformat(state["today"])))
        shown = focus_manifest(built, state["question"]).render(codes_per_type=manifest_codes)
        return {"manifest": shown, "catalog": catalog_from(built)}

    async def plan(state: RecordQaState) -> dict[str, Any]:
        turn = await navigator.plan(
            state["question"],
            manifest=state["manifest"],
            catalog=state["catalog"],
            window=_window(state),
            now=date.fromisoformat(state["today"]),
        )
        return {
            "plan": [f.model_dump(mode="json") for f in turn.plan.fetches],
            "steps": [_step("plan", turn.cost)],
        }

    async def fetch(state: RecordQaState) -> dict[str, Any]:
        widened = state.get("widened")
        requests = fetch_requests(
            _plan(state), state["patient_id"], _window(state), widening=widened, max_per_type=max_per_type
        )
        results = await _bounded(
            [lambda r=r: store.search(r.resource_type, r.params) for r in requests], max_concurrency
        )
        seen = {f["reference"] for f in state.get("facts") or []}
        facts: list[FactEntry] = []
        links: list[LinkEntry] = []
        log: list[RequestEntry] = []
        for request, (found, error) in zip(requests, results, strict=True):
            log.append({"round": int(widened is not None), "resource_type": request.resource_type,
                        "params": request.params, "found": len(found or []), "error": error})
            for raw in found or []:
                line = resource_line(raw)
                if line is None or line.reference in seen or line.resource_type != request.resource_type:
                    continue
                seen.add(line.reference)
                facts.append({"reference": line.reference, "version": line.version,
                              "day": day_text(line.when) if line.when else None, "line": line.render()})
                links.extend({"source": line.reference, "field": name, "target": target}
                             for name, target in references_to_follow(raw))
        return {"facts": facts, "links": links, "requests": log}

    async def requery(state: RecordQaState) -> dict[str, Any]:
        return {"widened": widening_for(_plan(state), _window(state))}

    async def follow_references(state: RecordQaState) -> dict[str, Any]:
        have = {f["reference"] for f in state.get("facts") or []}
        targets = unique(l["target"] for l in state.get("links") or [] if l["target"] not in have)[:max_follow]
        results = await _bounded([lambda t=t: store.resolve(t) for t in targets], max_concurrency)
        followed: list[FollowedEntry] = []
        log: list[RequestEntry] = []
        for target, (raw, error) in zip(targets, results, strict=True):
            line = resource_line(raw) if raw is not None else None
            usable = line is not None and line.reference == target  # a store must not swap in another resource
            log.append({"round": 2, "resource_type": target.split("/")[0], "params": {"reference": target},
                        "found": int(usable), "error": error})
            if usable and line is not None:
                text = line.text if len(line.text) <= _ANNOTATION_LIMIT else line.text[: _ANNOTATION_LIMIT - 1] + "…"
                followed.append({"reference": line.reference, "version": line.version, "text": text})
        return {"followed": followed, "requests": log}

    async def answer(state: RecordQaState) -> dict[str, Any]:
        facts = _facts_for_answer(state)
        errors = [r["error"] for r in state.get("requests") or [] if r["error"] and r["round"] < 2]
        if not facts and errors:
            # "Nothing found" would be false when the searches failed: say what happened instead.
            return {"draft": f"The record could not be read for this question ({errors[0]})."}
        turn = await navigator.answer(
            state["question"], facts, window=_window(state), now=date.fromisoformat(state["today"])
        )
        return {"draft": turn.text, "steps": [_step("answer", turn.cost)]}

    async def check(state: RecordQaState) -> dict[str, Any]:
        return {"result": _result(state).model_dump(mode="json")}

    builder = StateGraph(RecordQaState, input_schema=RecordQaInput, output_schema=RecordQaOutput)
    builder.add_node("resolve_dates", resolve_dates)
    builder.add_node("manifest", manifest)
    builder.add_node("plan", plan)
    builder.add_node("fetch", fetch)
    builder.add_node("requery", requery)
    builder.add_node("follow_references", follow_references)
    builder.add_node("answer", answer)
    builder.add_node("check_citations", check)
    builder.add_edge(START, "resolve_dates")
    builder.add_edge("resolve_dates", "manifest")
    builder.add_edge("manifest", "plan")
    builder.add_edge("plan", "fetch")
    builder.add_conditional_edges("fetch", route_after_fetch, ["requery", "follow_references"])
    builder.add_edge("requery", "fetch")
    builder.add_edge("follow_references", "answer")
    builder.add_edge("answer", "check_citations")
    builder.add_edge("check_citations", END)
    return builder.compile(checkpointer=checkpointer, name="record_qa")


def record_qa_mermaid() -> str:
    """The graph's shape as a Mermaid diagram; nodes are never run, so no navigator or store is needed."""
    return build_record_qa_graph(None, None).get_graph().draw_mermaid()  # type: ignore[arg-type]


async def ask_record(
    graph_or_parts: Any | tuple[Navigator, RecordStore],
    patient_id: str,
    question: str,
    now: str | date | datetime | None = None,
    *,
    config: RunnableConfig | None = None,
) -> RecordAnswer:
    """Answer ``question`` about ``patient_id`` with a compiled graph, or with ``(navigator, store)`` (a graph is
    compiled for the call). A graph with a checkpointer gets a fresh thread id unless ``config`` names one."""
    graph = build_record_qa_graph(*graph_or_parts) if isinstance(graph_or_parts, tuple) else graph_or_parts
    config = dict(config or {})
    if getattr(graph, "checkpointer", None) and not (config.get("configurable") or {}).get("thread_id"):
        config["configurable"] = {**(config.get("configurable") or {}), "thread_id": f"record-qa-{uuid.uuid4()}"}
    stated = _today(now).isoformat() if now is not None else None
    payload: RecordQaInput = {"patient_id": patient_id, "question": question, "now": stated}
    out = await graph.ainvoke(payload, config)
    return RecordAnswer.model_validate(out["result"])
