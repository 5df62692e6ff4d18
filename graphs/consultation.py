"""The consultation graph: intake -> doctor (or panel) decides -> environment, record or image answers -> ... -> finalize.

```
intake -> doctor --ask/test--> environment -> doctor ... --diagnose--> finalize -> END
                 --record----> record ------> doctor
                 --image-----> image -------> doctor
                 --(approval policy)--> approval --> environment / record / image / finalize, or back to the doctor
```
The doctor node asks one structured decision per turn; the last turn of the budget always ends in a diagnosis, so
a consultation cannot run out of turns without one. The recursion limit is derived from the turn budget.

With ``doctor="panel"`` in the input, the decision is the diagnostic panel's instead (``graphs.panel_nodes``):
Hypothesis, then Test-Chooser, Challenger, Stewardship and Checklist in one parallel step, then a consensus that
returns exactly one action. Everything after the decision is shared: every test passes the order gate
(``graphs.orders``: fee-table price, contraindications against the record's facts, the budget), every charge goes to
the cost ledger (``costs``), and the approval policy (``graphs.approvals``) pauses with ``interrupt()`` before the
orders and diagnoses a clinician must see.

The doctor, the environment and the record are the graph's parts, not its state. They are bound at build time, or
handed to each run as LangGraph's runtime context (``ConsultationParts``), so a benchmark compiles the graph once and
runs hundreds of consultations through it (compiling costs about 10 ms; a model call can cost less).

With a ``RecordLookup`` (a patient with a health record), intake loads the record summary into the doctor's
context and the doctor may look things up (``record``); lookups answer with citations, and a failing record is
reported to the doctor as text, never a crash.

With an ``ImageLookup`` (images of the patient), intake keeps the images' references in state (never their bytes)
and records each image that could not be had as a finding. The input's ``image_setting`` decides when they are
read: ``start`` reads every image at intake and opens the doctor's context with the reads; ``request`` (the
default) lists the images and lets the doctor choose ``image``, which the ``image`` node answers with a read for
what the doctor asked to look for. Either way the doctor sees the reads through ``agents.doctor.ImageBrief``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer, interrupt

from agents.doctor import DoctorTurn, Exchange, ImageBrief
from agents.doctor.fallbacks import PriorDifferential
from agents.panel import PARALLEL_ROLES, Panel
from graphs.approvals import approval_request, read_verdict
from graphs.decisions import commit_decision, ended_by_for, route_after_decision
from graphs.environment import Environment
from graphs.image_lookup import NO_IMAGE, ImageLookup, ImageReply
from graphs.orders import (
    charges_for_tests,
    facts_from,
    review_order,
    starts_question_round,
    visit_affordable,
    visit_charge,
)
from graphs.panel_nodes import (
    make_consensus_node,
    make_hypothesis_node,
    make_role_node,
    route_after_hypothesis,
)
from graphs.provenance import new_since, with_ids
from graphs.record_lookup import RecordLookup
from graphs.state import (
    ConsultationInput,
    ConsultationOutput,
    ConsultationState,
    DialogueEntry,
    DifferentialItem,
    Finding,
    ImageReadEntry,
)
from tools.images import ImageRef

# Steps per turn: the doctor node and the node that answers it (environment, record or image). A whole budget takes
# 2 * max_turns + 2 (intake and finalize, less the last turn's answering step, plus the step LangGraph counts on
# entry); 2 more are spare. The panel decides in three steps (hypothesis, the parallel roles, consensus), and an
# approval point adds one.
_STEPS_PER_TURN = 2
_PANEL_STEPS_PER_TURN = 4
_FIXED_STEPS = 4

logger = logging.getLogger(__name__)
NO_RECORD = "No health record is available for this patient."


class DoctorRole(Protocol):
    """What the graph needs of a doctor: one decision per turn (``agents.doctor.Doctor`` and the AgentClinic one)."""

    async def decide(
        self,
        objective: str,
        exchanges: Sequence[Exchange],
        turn: int,
        max_turns: int,
        *,
        prior_differential: PriorDifferential | None = None,
        record: str | None = None,
        images: ImageBrief | None = None,
    ) -> DoctorTurn: ...


@dataclass(frozen=True)
class ConsultationParts:
    """The doctor and environment of one consultation, and the patient's record and images when there are any."""

    doctor: DoctorRole
    environment: Environment
    record: RecordLookup | None = None
    images: ImageLookup | None = None
    # The diagnostic panel, for consultations whose input says doctor="panel".
    panel: Panel | None = None


def recursion_limit_for(max_turns: int, *, doctor: str = "single", approvals: bool = False) -> int:
    """The LangGraph recursion limit that lets ``max_turns`` turns finish (the default 25 is too low for 20), for
    the single doctor or the panel, with or without approval points."""
    per_turn = (_PANEL_STEPS_PER_TURN if doctor == "panel" else _STEPS_PER_TURN) + (1 if approvals else 0)
    return per_turn * max_turns + _FIXED_STEPS


def exchanges_from(dialogue: Sequence[DialogueEntry]) -> list[Exchange]:
    """Pair each doctor reply with the answer that followed it, the doctor's view of the past turns."""
    exchanges: list[Exchange] = []
    pending_reply: str | None = None
    for entry in dialogue:
        if entry["role"] == "doctor":
            pending_reply = entry.get("reply") or entry["text"]
        elif pending_reply is not None:
            exchanges.append(Exchange(reply=pending_reply, answer=entry["text"], answered_by=entry["role"]))
            pending_reply = None
    return exchanges


# The single doctor's router (kept under its old name): the same for either decider.
route_after_doctor = route_after_decision


def route_to_decider(state: ConsultationState) -> Literal["doctor", "hypothesis"]:
    """Who decides the next turn: the panel's Hypothesis role opens its turn; otherwise the single doctor."""
    return "hypothesis" if state.get("doctor") == "panel" else "doctor"


def route_after_approval(state: ConsultationState) -> str:
    """After the clinician: carry out what was approved, end, or (rejected) let the decider choose again."""
    if state.get("final_diagnosis") is not None or state.get("ended_by") == "clinician":
        return "finalize"
    if state.get("pending") is None:
        return route_to_decider(state)
    return route_after_decision(state)


def image_brief(state: ConsultationState, images: ImageLookup | None) -> ImageBrief | None:
    """What the doctor is told about the patient's images, built from state that intake alone writes, so it is the
    same on every turn and the doctor's prompt prefix never changes. None without an image lookup."""
    if images is None:
        return None
    intake_reads = [f["text"] for f in state.get("findings") or []
                    if f["turn"] == 0 and f["source"].startswith("image:")]
    return ImageBrief(
        available=images.describe(),
        intake_read="\n\n".join(intake_reads) or None,
        can_request=(state.get("image_setting") or "request") == "request" and bool(state.get("images")),
    )


def named_image(text: str, refs: Sequence[ImageRef]) -> str | None:
    """The first image whose id the doctor's text names ("look at image-2"), or None for the default (the first)."""
    for ref in refs:
        if re.search(rf"(?<![\w-]){re.escape(ref['id'])}(?![\w-])", text, re.IGNORECASE):
            return ref["id"]
    return None


async def _read_image(
    images: ImageLookup, image_id: str | None, question: str | None, differential: Sequence[str]
) -> ImageReply:
    try:
        return await images.read(image_id, question, differential=differential)
    except Exception as exc:  # noqa: BLE001 - lookups report failures as replies; one that raises is treated alike
        logger.warning("image read failed: %s", exc)
        return ImageReply(text=f"The image read failed: {exc}", image_id=image_id, status="failed")


def _image_finding(turn: int, reply: ImageReply) -> Finding:
    source = f"image:{reply.image_id}" if reply.image_id else "image"
    return {"turn": turn, "source": source, "refs": list(reply.sources), "text": reply.text}


def _read_entry(turn: int, reply: ImageReply, question: str | None) -> ImageReadEntry:
    return {"turn": turn, "image_id": reply.image_id, "status": reply.status, "sources": list(reply.sources),
            "question": question, "model": reply.model, "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens, "seconds": reply.seconds, "calls": reply.calls,
            "degraded": reply.degraded}


def build_consultation_graph(
    doctor: DoctorRole | None = None,
    environment: Environment | None = None,
    *,
    record: RecordLookup | None = None,
    images: ImageLookup | None = None,
    checkpointer: Checkpointer = None,
) -> Any:
    """Compile the consultation graph (nothing is built at import time).

    Bind a doctor and an environment here, or leave them out and pass ``context=ConsultationParts(...)`` to each
    run; a run's context wins. ``record`` is the patient's health record when the case names one; without it the
    doctor has no chart. ``images`` are the patient's images; without them the doctor has none."""
    bound = (ConsultationParts(doctor, environment, record, images)
             if doctor is not None and environment is not None else None)

    def parts_of(runtime: Runtime[ConsultationParts]) -> ConsultationParts:
        parts = runtime.context or bound
        if parts is None:
            raise RuntimeError("the consultation graph has no doctor: build it with one, or run it with "
                               "context=ConsultationParts(doctor, environment)")
        return parts

    async def intake(state: ConsultationState, runtime: Runtime[ConsultationParts]) -> dict[str, Any]:
        parts = parts_of(runtime)
        update: dict[str, Any] = {
            "turn": 0, "pending": None, "final_diagnosis": None, "ended_by": None, "record_summary": None,
        }
        if state.get("doctor") == "panel" and parts.panel is None:
            raise RuntimeError("the consultation asks for the panel (doctor='panel') but was given no Panel")
        findings: list[Finding] = []
        if parts.record is not None:
            findings += await record_intake(parts.record, update)
            update["patient_facts"] = await facts_intake(parts.record)
        if parts.images is not None:
            findings += await image_intake(parts.images, state.get("image_setting") or "request", update)
        if findings:
            update["findings"] = with_ids(state.get("findings"), findings)
        return update

    async def facts_intake(record: RecordLookup) -> dict[str, Any] | None:
        # Safety checks need the record's conditions, allergies, devices and labs as facts; a lookup without them
        # (or one that fails) leaves the checks with nothing known, never with a guess.
        facts = getattr(record, "facts", None)
        if facts is None:
            return None
        try:
            return dict(await facts())
        except Exception as exc:  # noqa: BLE001 - the consultation goes on; contraindications then check nothing
            logger.warning("facts of health record %s unavailable: %s", record.patient, exc)
            return None

    async def record_intake(record: RecordLookup, update: dict[str, Any]) -> list[Finding]:
        try:
            summary = await record.summary()
        except Exception as exc:  # noqa: BLE001 - an unreachable record must not end the consultation; recorded
            logger.warning("health record %s unavailable: %s", record.patient, exc)
            return [{"turn": 0, "source": "record", "refs": [],
                     "text": f"Health record {record.patient} unavailable: {exc}"}]
        update["record_summary"] = summary.text
        # The summary's text lives once, in record_summary; the finding records what was read and from where.
        return [{"turn": 0, "source": "record", "refs": list(summary.sources),
                 "text": f"Record summary of {summary.patient} read at intake "
                         f"({len(summary.sources)} sources, as of {summary.as_of or 'unknown'})"}]

    async def image_intake(images: ImageLookup, setting: str, update: dict[str, Any]) -> list[Finding]:
        if setting not in ("start", "request"):
            raise ValueError(f"image_setting must be 'start' or 'request', not {setting!r}")
        refs = images.images()
        update["images"] = [ImageRef(**ref) for ref in refs]
        findings: list[Finding] = [{"turn": 0, "source": "image", "refs": [], "text": f"Image unavailable: {reason}"}
                                   for reason in images.missing()]
        if setting == "start":
            # Read now, one image at a time (one image model); the texts reach the doctor through ImageBrief.
            replies = [await _read_image(images, ref["id"], None, ()) for ref in refs]
            findings += [_image_finding(0, reply) for reply in replies]
            update["image_reads"] = [_read_entry(0, reply, None) for reply in replies]
        return findings

    async def decide(state: ConsultationState, runtime: Runtime[ConsultationParts]) -> dict[str, Any]:
        doctor = parts_of(runtime).doctor
        turn = state["turn"] + 1
        differentials = state.get("differentials") or []
        outcome = await doctor.decide(
            state["objective"],
            exchanges_from(state.get("dialogue") or []),
            turn,
            # Once the money for another question round is gone, this turn is the last: the doctor must diagnose.
            turn if state.get("budget_exhausted") else state["max_turns"],
            prior_differential=differentials[-1]["items"] if differentials else None,
            record=state.get("record_summary"),
            images=image_brief(state, parts_of(runtime).images),
        )
        decision = outcome.decision
        entry: DialogueEntry = {
            "turn": turn,
            "role": "doctor",
            "text": decision.text,
            "action": decision.action,
            "reply": outcome.reply,
            "thinking": outcome.thinking,
            "model": outcome.model,
            "input_tokens": outcome.input_tokens,
            "output_tokens": outcome.output_tokens,
            "seconds": outcome.seconds,
            "calls": outcome.calls,
            "degraded": outcome.degraded,
        }
        items: list[DifferentialItem] = [
            {"diagnosis": d.diagnosis, "probability": d.probability} for d in decision.differential
        ]
        update: dict[str, Any] = {"turn": turn, "dialogue": [entry]}
        if items:
            # The single doctor does not cite: what moved its differential is what it learned since the last one.
            update["differentials"] = [{"turn": turn, "items": items, "by": "doctor",
                                        "moved_by": new_since(state.get("findings"), differentials)}]
        update.update(commit_decision(state, decision.action, decision.text, forced=outcome.forced))
        return update

    async def approve(state: ConsultationState) -> dict[str, Any]:
        # interrupt() first and nothing before it: on resume the node runs again from the top.
        pending = state["pending"]
        if pending is None:
            raise RuntimeError("approval node reached with nothing to approve")
        differentials = state.get("differentials") or []
        differential = [(i["diagnosis"], i["probability"]) for i in differentials[-1]["items"]] if differentials else []
        price = None
        if pending["action"] == "test":
            price = review_order(pending["text"], facts=None, costs=None, budget=None).price
        verdict = read_verdict(interrupt(approval_request(pending["action"], pending["text"], pending.get("approval")
                                                          or [], price=price, differential=differential)))
        turn = state["turn"]
        record = {"turn": turn, "action": pending["action"], "text": pending["text"],
                  "reasons": list(pending.get("approval") or []), "decision": verdict.decision,
                  "edited": verdict.text, "note": verdict.note}
        update: dict[str, Any] = {"approvals": [record]}
        if verdict.decision != "reject":
            text = verdict.text or pending["text"]
            if pending["action"] == "diagnose":
                forced = bool(pending.get("forced"))
                update.update(pending=None, final_diagnosis=text, ended_by=ended_by_for(state, forced))
            else:
                update["pending"] = {**pending, "text": text, "approved": True}
            return update
        what = "order" if pending["action"] == "test" else "diagnosis"
        said = f"The clinician rejected the {what} '{pending['text']}'" + (f": {verdict.note}" if verdict.note else ".")
        entry: DialogueEntry = {"turn": turn, "role": "clinician", "text": said, "action": None}
        update.update(pending=None, dialogue=[entry],
                      findings=with_ids(state.get("findings"), [{"turn": turn, "source": "clinician", "text": said}]))
        if pending["action"] == "diagnose" and (turn >= state["max_turns"] or state.get("budget_exhausted")):
            # No turn is left to find another diagnosis: the consultation ends without one, and says why.
            update["ended_by"] = "clinician"
        return update

    async def answer(state: ConsultationState, runtime: Runtime[ConsultationParts]) -> dict[str, Any]:
        environment = parts_of(runtime).environment
        pending = state["pending"]
        if pending is None:
            raise RuntimeError("environment node reached with no pending action")
        turn = state["turn"]
        dialogue = state.get("dialogue") or []
        charges: list[dict[str, Any]] = []
        review = None
        if pending["action"] == "ask" and starts_question_round(dialogue):
            if not visit_affordable(state.get("costs"), state.get("budget")):
                return refuse(state, pending["text"], "Question not asked: a new round of questions costs $300, "
                              "more than the budget has left. The next decision must be the diagnosis.",
                              exhausted=True)
            charges.append(visit_charge(turn))
        elif pending["action"] == "test":
            review = review_order(pending["text"], facts=facts_from(state.get("patient_facts")),
                                  costs=state.get("costs"), budget=state.get("budget"))
            if not review.allowed:
                return refuse(state, pending["text"], review.refusal(pending["text"]), reasons=review.reasons())
            charges += charges_for_tests(turn, review.priced)
        observation = await environment.respond(pending["action"], pending["text"], dialogue)
        entry: DialogueEntry = {
            "turn": turn,
            "role": observation.speaker,
            "text": observation.text,
            "action": None,
            "model": observation.model,
            "input_tokens": observation.input_tokens,
            "output_tokens": observation.output_tokens,
            "seconds": observation.seconds,
            "calls": observation.calls,
        }
        update: dict[str, Any] = {
            "pending": None,
            "dialogue": [entry],
            "findings": with_ids(state.get("findings"),
                                 [{"turn": turn, "source": observation.source, "text": observation.text}]),
        }
        if charges:
            update["costs"] = charges
        if review is not None:
            update["tests_ordered"] = [{
                "turn": turn, "name": pending["text"], "available": observation.available, "price": review.price,
                "canonical": ", ".join(t.canonical for t in review.priced if t.canonical) or None,
                "matched": all(t.matched for t in review.priced),
                "warnings": [w.reason for w in review.warnings],
            }]
        return update

    def refuse(state: ConsultationState, test: str, text: str, *, reasons: list[dict[str, Any]] | None = None,
               exhausted: bool = False) -> dict[str, Any]:
        """The gate's answer to an order it will not carry out: told to the doctor, recorded, never charged."""
        turn = state["turn"]
        sources = [s for r in reasons or [] for s in r.get("sources") or []]
        update: dict[str, Any] = {
            "pending": None,
            "dialogue": [{"turn": turn, "role": "safety", "text": text, "action": None}],
            "findings": with_ids(state.get("findings"),
                                 [{"turn": turn, "source": "safety", "refs": sources, "text": text}]),
        }
        if reasons is not None:
            update["blocked"] = [{"turn": turn, "test": test, "reasons": reasons}]
        if exhausted:
            update["budget_exhausted"] = True
        return update

    async def look_up(state: ConsultationState, runtime: Runtime[ConsultationParts]) -> dict[str, Any]:
        record = parts_of(runtime).record
        pending = state["pending"]
        if pending is None:
            raise RuntimeError("record node reached with no pending lookup")
        turn = state["turn"]
        entry: DialogueEntry = {"turn": turn, "role": "record", "text": NO_RECORD, "action": None}
        refs: list[str] = []
        if record is not None:
            try:
                reply = await record.ask(pending["text"])
            except Exception as exc:  # noqa: BLE001 - the doctor can rephrase or move on; the error is recorded
                logger.warning("record lookup failed: %s", exc)
                entry["text"] = f"The record lookup failed: {exc}"
            else:
                refs = list(reply.sources)
                entry.update(text=reply.text, model=reply.model, input_tokens=reply.input_tokens,
                             output_tokens=reply.output_tokens, seconds=reply.seconds, calls=reply.calls,
                             degraded=reply.degraded)
        return {
            "pending": None,
            "dialogue": [entry],
            "findings": with_ids(state.get("findings"),
                                 [{"turn": turn, "source": "record", "refs": refs, "text": entry["text"]}]),
        }

    async def look_at_image(state: ConsultationState, runtime: Runtime[ConsultationParts]) -> dict[str, Any]:
        images = parts_of(runtime).images
        pending = state["pending"]
        if pending is None:
            raise RuntimeError("image node reached with no pending image request")
        turn = state["turn"]
        question = pending["text"]
        if images is None:
            reply = ImageReply(text=NO_IMAGE, image_id=None, status="unavailable")
        else:
            differentials = state.get("differentials") or []
            diagnoses = [item["diagnosis"] for item in differentials[-1]["items"]] if differentials else []
            image_id = named_image(question, state.get("images") or [])
            reply = await _read_image(images, image_id, question, diagnoses)
        entry: DialogueEntry = {
            "turn": turn, "role": "imaging", "text": reply.text, "action": None, "model": reply.model,
            "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens, "seconds": reply.seconds,
            "calls": reply.calls, "degraded": reply.degraded,
        }
        return {
            "pending": None,
            "dialogue": [entry],
            "findings": with_ids(state.get("findings"), [_image_finding(turn, reply)]),
            "image_reads": [_read_entry(turn, reply, question)],
        }

    async def finalize(state: ConsultationState) -> dict[str, Any]:
        # The doctor node always sets a diagnosis before routing here; this guards hand-edited checkpoints.
        if not state.get("final_diagnosis"):
            return {"final_diagnosis": "No diagnosis reached", "ended_by": state.get("ended_by") or "turn_budget"}
        return {}

    builder = StateGraph(
        ConsultationState,
        context_schema=ConsultationParts,
        input_schema=ConsultationInput,
        output_schema=ConsultationOutput,
    )
    builder.add_node("intake", intake)
    builder.add_node("doctor", decide)
    builder.add_node("hypothesis", make_hypothesis_node(parts_of))
    for role in PARALLEL_ROLES:
        builder.add_node(role, make_role_node(role, parts_of))
    builder.add_node("consensus", make_consensus_node(parts_of))
    builder.add_node("approval", approve)
    builder.add_node("environment", answer)
    builder.add_node("record", look_up)
    builder.add_node("image", look_at_image)
    builder.add_node("finalize", finalize)
    deciders = ["doctor", "hypothesis"]
    actions = ["environment", "record", "image", "approval", "finalize"]
    builder.add_edge(START, "intake")
    builder.add_conditional_edges("intake", route_to_decider, deciders)
    builder.add_conditional_edges("doctor", route_after_decision, actions)
    builder.add_conditional_edges("hypothesis", route_after_hypothesis, [*PARALLEL_ROLES, "consensus"])
    # The consensus waits for all four parallel roles (one superstep) before it runs.
    builder.add_edge(list(PARALLEL_ROLES), "consensus")
    builder.add_conditional_edges("consensus", route_after_decision, actions)
    builder.add_conditional_edges("approval", route_after_approval, [*deciders, *actions[:3], "finalize"])
    for node in ("environment", "record", "image"):
        builder.add_conditional_edges(node, route_to_decider, deciders)
    builder.add_edge("finalize", END)
    return builder.compile(checkpointer=checkpointer, name="consultation")


def consultation_mermaid() -> str:
    """The graph's shape as a Mermaid diagram; nodes are never run, so no doctor or environment is needed."""
    return build_consultation_graph().get_graph().draw_mermaid()
