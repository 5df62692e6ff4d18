"""The diagnostic panel as graph nodes: Hypothesis, then four roles side by side, then one consensus action.

```
hypothesis --> test_chooser --+
           --> challenger   --+--> consensus --> environment / record / image / approval / finalize
           --> stewardship  --+
           --> checklist    --+
hypothesis --(instant variant, or the final turn)--> consensus
```
The four roles are parallel branches of one superstep: LangGraph runs them concurrently, so the step costs about one
model call of wall time, not four. Each role writes its result to the ``panel`` channel (append-only, so concurrent
writes merge); a role that failed is recorded there and the consensus goes on without it.

Safety lives here too: after Hypothesis, every can't-miss diagnosis for the presenting complaint that no finding has
excluded is put back into each member's differential at a small floor probability, so the other roles (and the
record of the turn) keep it in view. The consensus (``agents.panel.decide_consensus``) is deterministic over the
role outputs, the budget, the ledger and the patient's facts. With ``members`` > 1 (the ensemble), each role runs
once per member and the members' differentials are aggregated.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime

from agents.panel import (
    PARALLEL_ROLES,
    BriefFinding,
    CantMiss,
    Panel,
    PanelBrief,
    PanelPolicy,
    RoleResult,
    aggregate_differentials,
    cant_miss_for,
    decide_consensus,
    keep_in_differential,
    open_cant_miss,
)
from graphs.decisions import commit_decision
from graphs.orders import answered_actions, facts_from, ledger_of
from graphs.provenance import ids_of, known_ids, new_since
from graphs.state import ConsultationState, DialogueEntry

Differential = list[tuple[str, float]]
PartsOf = Callable[[Runtime[Any]], Any]


def panel_policy(state: Mapping[str, Any]) -> PanelPolicy:
    return PanelPolicy.from_dict(state.get("panel_policy") or {})


def is_final_turn(state: Mapping[str, Any], turn: int) -> bool:
    """The last turn of the budget, or the first after the money ran out: the panel must diagnose."""
    return turn >= state["max_turns"] or bool(state.get("budget_exhausted"))


def _prior(state: Mapping[str, Any]) -> Differential:
    differentials = state.get("differentials") or []
    return [(i["diagnosis"], i["probability"]) for i in differentials[-1]["items"]] if differentials else []


def _doctor_texts(state: Mapping[str, Any], actions: Sequence[str]) -> tuple[str, ...]:
    return tuple(e["text"] for e in state.get("dialogue") or [] if e["role"] == "doctor" and e.get("action") in actions)


def _previous_action(state: Mapping[str, Any]) -> str | None:
    actions = answered_actions(state.get("dialogue") or [])
    return actions[-1] if actions else None


@functools.lru_cache(maxsize=256)
def _cant_miss(objective: str) -> tuple[CantMiss, ...]:
    # The same objective every turn of a consultation: match its complaints once, not once per role and member.
    return tuple(cant_miss_for(objective))


def open_cant_miss_names(state: Mapping[str, Any], differential: Differential) -> list[str]:
    """The can't-miss diagnoses for the presenting complaint that are neither in ``differential`` nor excluded."""
    texts = [f["text"] for f in state.get("findings") or []]
    return [item.diagnosis
            for item in open_cant_miss(_cant_miss(state["objective"]), [name for name, _ in differential], texts)]


def build_brief(state: Mapping[str, Any], parts: Any, turn: int, differential: Differential,
                open_names: Sequence[str] | None = None) -> PanelBrief:
    """The case as every role sees it at ``turn``; ``open_names`` are the open can't-miss names when known."""
    policy = panel_policy(state)
    findings = state.get("findings") or []
    ledger = ledger_of(state.get("costs"))
    budget = state.get("budget")
    images = parts.images
    can_image = images is not None and (state.get("image_setting") or "request") == "request" and bool(
        state.get("images"))
    return PanelBrief(
        objective=state["objective"],
        turn=turn,
        max_turns=turn if is_final_turn(state, turn) else state["max_turns"],
        findings=tuple(BriefFinding(id=i, source=f["source"], text=f["text"])
                       for i, f in zip(ids_of(findings), findings, strict=True)),
        questions_asked=_doctor_texts(state, ("ask", "record")),
        tests_done=_doctor_texts(state, ("test",)),
        differential=tuple(differential),
        open_cant_miss=tuple(open_names if open_names is not None else open_cant_miss_names(state, differential)),
        blocked=tuple(f"{b['test']}: {'; '.join(r['reason'] for r in b['reasons'])}"
                      for b in state.get("blocked") or []),
        spent=ledger.total,
        budget_left=None if budget is None else ledger.remaining(budget),
        record=state.get("record_summary"),
        can_record=parts.record is not None,
        images="\n".join(images.describe()) if can_image and images is not None else None,
        can_image=can_image,
        variant=policy.variant,
        members=policy.members,
        previous_action=_previous_action(state),
    )


def _note(result: RoleResult, turn: int) -> dict[str, Any]:
    return {**result.to_dict(), "turn": turn}


def _member_differential(result: RoleResult, prior: Differential) -> Differential:
    if not result.ok or not result.output:
        return list(prior)
    items = result.output.get("differential") or []
    return [(str(i["diagnosis"]), float(i["probability"])) for i in items] or list(prior)


def _the_panel(parts: Any) -> Panel:
    if parts.panel is None:
        raise RuntimeError("the consultation asks for the panel (doctor='panel') but was given no Panel: "
                           "pass ConsultationParts(..., panel=Panel(model))")
    return parts.panel


def make_hypothesis_node(parts_of: PartsOf) -> Callable[..., Any]:
    async def hypothesis(state: ConsultationState, runtime: Runtime[Any]) -> dict[str, Any]:
        parts = parts_of(runtime)
        panel = _the_panel(parts)
        policy = panel_policy(state)
        turn = state["turn"] + 1
        prior = _prior(state)
        base = build_brief(state, parts, turn, prior)
        results = await panel.run_members("hypothesis", [replace(base, member=m) for m in range(policy.members)])
        members: list[Differential] = []
        kept: list[str] = []
        texts = [f["text"] for f in state.get("findings") or []]
        candidates = _cant_miss(state["objective"])
        for result in results:
            differential = _member_differential(result, prior)
            still_open = open_cant_miss(candidates, [name for name, _ in differential], texts)
            floored = keep_in_differential(differential, still_open)
            kept += [name for name, _ in floored if name not in dict(differential)]
            members.append(floored)
        return {
            "panel": [_note(r, turn) for r in results],
            # Computed once here, read by the four parallel roles and the consensus.
            "panel_turn": {"turn": turn, "members": [[list(i) for i in m] for m in members],
                           "open": [open_cant_miss_names(state, m) for m in members],
                           "kept": list(dict.fromkeys(kept)), "final": is_final_turn(state, turn)},
        }

    return hypothesis


def _member_briefs(state: Mapping[str, Any], parts: Any) -> list[PanelBrief]:
    current = state.get("panel_turn") or {}
    turn = current.get("turn", state["turn"] + 1)
    members = [[(str(n), float(p)) for n, p in m] for m in current.get("members") or [[]]]
    opens = current.get("open") or [open_cant_miss_names(state, m) for m in members]
    base = build_brief(state, parts, turn, members[0], opens[0])
    return [replace(base, member=i, differential=tuple(m), open_cant_miss=tuple(o))
            for i, (m, o) in enumerate(zip(members, opens, strict=True))]


def make_role_node(role: str, parts_of: PartsOf) -> Callable[..., Any]:
    async def run_role(state: ConsultationState, runtime: Runtime[Any]) -> dict[str, Any]:
        briefs = _member_briefs(state, parts_of(runtime))
        results = await _the_panel(parts_of(runtime)).run_members(role, briefs)  # type: ignore[arg-type]
        return {"panel": [_note(r, briefs[0].turn) for r in results]}

    run_role.__name__ = role
    return run_role


def route_after_hypothesis(state: ConsultationState) -> list[str]:
    """The four parallel roles; straight to the consensus when the turn can only end in a diagnosis."""
    current = state.get("panel_turn") or {}
    if current.get("final") or panel_policy(state).variant == "instant":
        return ["consensus"]
    return list(PARALLEL_ROLES)


def make_consensus_node(parts_of: PartsOf) -> Callable[..., Any]:
    async def consensus(state: ConsultationState, runtime: Runtime[Any]) -> dict[str, Any]:
        parts = parts_of(runtime)
        policy = panel_policy(state)
        current = state.get("panel_turn") or {}
        turn = int(current.get("turn", state["turn"] + 1))
        final = bool(current.get("final")) or is_final_turn(state, turn)
        members = [[(str(n), float(p)) for n, p in m] for m in current.get("members") or []]
        differential = aggregate_differentials(members, policy.aggregate) if members else _prior(state)
        notes = [n for n in state.get("panel") or [] if n.get("turn") == turn]
        results = [RoleResult.from_dict(n) for n in notes]
        brief = build_brief(state, parts, turn, differential)
        decided = decide_consensus(brief, results, differential, policy, ledger=ledger_of(state.get("costs")),
                                   facts=facts_from(state.get("patient_facts")), final=final)
        findings = state.get("findings") or []
        moved_by = known_ids(decided.moved_by, findings) or new_since(findings, state.get("differentials"))
        entry: DialogueEntry = {
            "turn": turn,
            "role": "doctor",
            "text": decided.text,
            "action": decided.action,
            "reply": json.dumps({"action": decided.action, "text": decided.text, "rationale": decided.rationale}),
            "model": next((r.model for r in results if r.model), None),
            "input_tokens": sum(r.input_tokens for r in results),
            "output_tokens": sum(r.output_tokens for r in results),
            "seconds": sum(r.seconds for r in results),
            "calls": sum(r.calls for r in results),
            "degraded": not any(r.ok for r in results if r.role == "hypothesis"),
        }
        kept = [name for name in current.get("kept") or [] if name in {n for n, _ in decided.differential}]
        update: dict[str, Any] = {
            "turn": turn,
            "dialogue": [entry],
            "consensus": [{**decided.to_dict(), "turn": turn}],
            "panel_turn": None,
        }
        if decided.differential:
            update["differentials"] = [{
                "turn": turn, "by": "panel", "moved_by": moved_by, "kept": kept,
                "items": [{"diagnosis": n, "probability": round(p, 4)} for n, p in decided.differential],
            }]
        forced = decided.action == "diagnose" and final and policy.variant != "instant"
        update.update(commit_decision(state, decided.action, decided.text, forced=forced))
        return update

    return consensus
