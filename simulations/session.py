"""One consultation from start to verdict: the simulated (or interactive) clinic, the graph, the judge, the transcript.

The command line and the benchmark runner both call ``run_consultation``. It streams each dialogue entry to a
callback as it happens, pauses for a person when the environment is interactive, and returns the transcript.
A consultation interrupted at any point resumes from its last checkpoint with ``resume=True`` and the same thread.

Doctor: ``doctor_mode`` "single" (the one-node doctor) or "panel" (the diagnostic panel on the reasoning model, run
by ``panel_policy``), an optional ``budget`` (USD) and the clinician approval policy (``approve``; benchmark runs use
"none"). A consultation that pauses (a person's answer in the interactive environment, or a clinician's approval)
asks ``ask_person`` with the interrupt's value and resumes with what it returns; without one it raises
``ConsultationPaused``.

Images: the case's image (a file in ``image_dir`` or its URL, through the image store) and any ``image_sources``
are stored before the graph starts; the graph gets an image lookup over them (read by the ``imaging`` model when
there is one) and the image setting ("start": read at intake; "request": read when the doctor asks). Graph state and
checkpoints keep refs and digests only, never image bytes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from agents.imaging import ImageClassifier, ImageReader, ImageTriage, modality_for
from agents.panel import CostLedger
from agents.panel.policy import PanelPolicy
from graphs.approvals import DEFAULT_EXPENSIVE_OVER
from graphs.consultation import ConsultationParts, build_consultation_graph, recursion_limit_for
from graphs.environment import Environment
from graphs.image_reading import StoreImageLookup
from graphs.interactive import InteractiveEnvironment
from graphs.record_lookup import RecordLookup
from graphs.state import DialogueEntry
from simulations.arms import DoctorRules
from simulations.case_images import IMAGE_SETTINGS, CaseImages, ImageSetting, image_status, prepare_case_images
from simulations.cases import Case
from simulations.leaks import leaks_diagnosis
from simulations.protocols import Protocol, build_doctor, build_environment
from simulations.scoring import score_consultation
from simulations.transcript import TRANSCRIPT_VERSION, totals_of
from tools.images import ImageError, ImageStore

EntryCallback = Callable[[DialogueEntry], None]
# Receives each node's state update as it happens (the panel's notes, the consensus, costs, blocked orders,
# approvals ...), and on resume once the saved state with replayed=True.
UpdateCallback = Callable[..., None]
# Receives the interrupt's value (graphs.interactive.InteractiveRequest, kind "answer", or
# graphs.approvals.ApprovalRequest, kind "approval") and returns the resume value (an answer, or a verdict).
PersonCallback = Callable[[Mapping[str, Any]], Awaitable[Any]]


class ConsultationPaused(Exception):
    """The consultation waits for a person (an answer, or a clinician's approval) and no one was there to give it;
    ``request`` is the interrupt's value."""

    def __init__(self, thread_id: str, request: Mapping[str, Any]) -> None:
        super().__init__(f"consultation {thread_id} is waiting for {_waiting_for(request)}")
        self.thread_id = thread_id
        self.request = request


def _waiting_for(request: Mapping[str, Any]) -> str:
    """What a paused consultation waits for, in words."""
    prompt = str(request.get("prompt") or "").strip()
    if request.get("kind") == "approval":
        what = f"{request.get('action', 'an action')} {request.get('text', '')!r}".strip()
        reasons = ", ".join(str(r) for r in request.get("reasons") or [])
        return f"a clinician's approval of {what}" + (f" ({reasons})" if reasons else "") + (
            f": {prompt}" if prompt else "")
    return f"an answer: {prompt}" if prompt else "an answer"


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
    # Images: the store that fetches and caches them (None: an expected image is "unavailable"), a folder of case
    # images by name (simulations.case_images.local_image_for), extra sources (consult --image), when the reader
    # runs ("start": at intake; "request": when the doctor asks), an optional zero-shot triage classifier, and
    # whether a case image that is only a URL may be downloaded.
    image_store: ImageStore | None = None
    image_dir: Path | None = None
    image_sources: list[str] = field(default_factory=list)
    image_setting: ImageSetting = "request"
    image_classifier: ImageClassifier | None = None
    download_images: bool = True
    # Who decides (simulations.arms): the one-node doctor, or the panel on the reasoning model with its policy
    # (None: the default no-budget panel); the most the consultation may spend (USD, None: no limit); when a
    # clinician must approve ("none" in benchmark runs), and from what price a test counts as expensive.
    doctor_mode: str = "single"
    panel_policy: PanelPolicy | None = None
    budget: float | None = None
    approve: str = "none"
    expensive_over: float = DEFAULT_EXPENSIVE_OVER

    def __post_init__(self) -> None:
        if self.image_setting not in IMAGE_SETTINGS:
            raise ValueError(f"unknown image setting {self.image_setting!r}; choose 'start' or 'request'")
        self.panel_policy = self.rules().checked(doctor_bias=self.doctor_bias).policy

    def rules(self) -> DoctorRules:
        """Who decides and under which rules (the doctor fields above, together)."""
        return DoctorRules(self.doctor_mode, self.panel_policy, self.budget, self.approve, self.expensive_over)

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

    def origin(self, image_missing: Sequence[str] = ()) -> dict[str, Any]:
        """What started the consultation, for ``--resume``; ``image_missing`` are the reasons its images could not
        be had (text only: a resumed consultation keeps telling the same story)."""
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
            "doctor": self.rules().block(),
            # Where the images come from, never their bytes: a resumed consultation prepares the same ones again.
            "images": {
                "setting": self.image_setting,
                "sources": list(self.image_sources),
                "image_dir": str(self.image_dir) if self.image_dir is not None else None,
                "download": self.download_images,
                "missing": list(image_missing),
            },
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
    on_update: UpdateCallback | None = None,
) -> dict[str, Any]:
    """Run (or resume) one consultation to its verdict and return the transcript as a JSON-ready dict.

    ``graph`` is a consultation graph compiled once with ``checkpointer`` (a benchmark runs every case through one);
    without it, one is compiled for this consultation. ``durability="sync"`` checkpoints every step before the next
    starts (what resuming needs); a benchmark, which redoes an interrupted attempt whole, passes ``"exit"``.
    ``on_update`` gets every node's state update as it happens (the command line prints the panel, costs, blocked
    orders and approvals from them), and on resume the saved state once, with ``replayed=True``.
    """
    started = time.perf_counter()
    environment = setup.environment()
    if graph is None:
        graph = build_consultation_graph(checkpointer=checkpointer)
    config: dict[str, Any] = {
        "configurable": {"thread_id": thread_id},
        "recursion_limit": recursion_limit_for(setup.max_turns),
    }

    graph_input: Any = None
    saved: Mapping[str, Any] = {}
    if resume:
        snapshot = await graph.aget_state(config)
        if not snapshot.values:
            raise LookupError(f"no checkpoint found for consultation {thread_id}")
        saved = snapshot.values
        for entry in saved.get("dialogue", []):
            if on_entry:
                on_entry(entry)
        if on_update:
            on_update(saved, replayed=True)
    images = await _consultation_images(setup, saved)
    # A resumed consultation goes on with the doctor and the approval policy it started with.
    rules = DoctorRules.from_state(saved, setup.rules())
    config["recursion_limit"] = recursion_limit_for(setup.max_turns, doctor=rules.mode,
                                                    approvals=rules.approve != "none")
    panel = rules.panel(setup.models["reasoning"], setup.doctor_max_new_tokens)
    parts = ConsultationParts(setup.doctor(), environment, setup.record, images=images.lookup, panel=panel)
    if not resume:
        graph_input = {
            "case_id": setup.case.id,
            "objective": environment.opening(),
            "max_turns": setup.max_turns,
            "origin": setup.origin(image_missing=images.prepared.missing),
            "image_setting": images.setting,
            **rules.graph_input(),
        }

    # Streaming None continues from the last checkpoint: a crashed run picks up its next step, and a paused one
    # re-enters the waiting node, which asks again (the interactive environment does nothing before it asks).
    while True:
        await _stream(graph, graph_input, config, parts, on_entry, durability, on_update)
        snapshot = await graph.aget_state(config)
        if not snapshot.interrupts:
            break
        request: Mapping[str, Any] = snapshot.interrupts[0].value
        if ask_person is None:
            raise ConsultationPaused(thread_id, request)
        graph_input = Command(resume=await ask_person(request))

    state = snapshot.values
    return await _transcript(setup, state, thread_id, environment.mode, time.perf_counter() - started, images)


def _deliberation(state: Mapping[str, Any]) -> dict[str, Any]:
    """The transcript's record of cost, safety, approvals and the panel's deliberation (empty lists when none)."""
    return {
        "cost": CostLedger.from_entries(state.get("costs") or []).to_dict(),
        "panel": list(state.get("panel") or []),
        "consensus": list(state.get("consensus") or []),
        "blocked": list(state.get("blocked") or []),
        "approvals": list(state.get("approvals") or []),
        "patient_facts": state.get("patient_facts"),
    }


def _images_block(state: Mapping[str, Any], images: _Images) -> dict[str, Any]:
    """The transcript's record of the images: refs (never bytes), why any are missing, each read, the status."""
    setting = state.get("image_setting") or images.setting
    refs = list(state.get("images") or images.prepared.refs)
    reads = list(state.get("image_reads") or [])
    return {
        "setting": setting,
        "refs": refs,
        "missing": list(images.prepared.missing),
        "reads": reads,
        "status": image_status(images.prepared, reads, setting=setting, has_reader=images.has_reader),
    }


@dataclass
class _Images:
    """The images of one consultation as run: the lookup the graph reads through, and what the transcript says."""

    setting: ImageSetting
    prepared: CaseImages
    lookup: StoreImageLookup | None
    has_reader: bool  # an imaging model or a triage classifier


def _image_options(setup: ConsultationSetup, saved: Mapping[str, Any]) -> tuple[ImageSetting, list[str], Path | None,
                                                                               bool]:
    """The image setting, sources, folder and download rule: the setup's, or on resume the ones it started with."""
    origin = (saved.get("origin") or {}).get("images") if saved else None
    if not isinstance(origin, Mapping):
        return setup.image_setting, list(setup.image_sources), setup.image_dir, setup.download_images
    setting = saved.get("image_setting") or origin.get("setting") or setup.image_setting
    image_dir = origin.get("image_dir")
    return (setting, [str(s) for s in origin.get("sources") or []],
            Path(image_dir) if image_dir else None, bool(origin.get("download", True)))


async def _consultation_images(setup: ConsultationSetup, saved: Mapping[str, Any]) -> _Images:
    """Store the case's images and build the graph's lookup over them (None when the case has no image at all).

    A resumed consultation whose intake already ran keeps the images it started with: the refs in its state (the
    store serves them by digest, or fetches their source again when its cache lost them) and the missing reasons in
    its origin, so the doctor never meets an image it was not told about.
    """
    setting, sources, image_dir, download = _image_options(setup, saved)
    if "images" in saved:
        prepared = await _saved_images(setup.image_store, saved)
    else:
        prepared = await prepare_case_images(setup.case, setup.image_store, image_dir=image_dir,
                                             extra_sources=sources, download=download)
    model = setup.models.get("imaging")
    # A triage classifier alone can answer a read too (scores for the doctor's diagnoses), so it counts as a reader.
    has_reader = model is not None or setup.image_classifier is not None
    if not prepared.expected:
        return _Images(setting, prepared, None, has_reader)
    reader = ImageReader(model) if model is not None else None
    triage = None
    if setup.image_classifier is not None:
        triage = ImageTriage(setup.image_classifier, model=setup.specs.get("triage"))
    # The modality comes from what the doctor may see (the objective) and the image categories, never from the
    # diagnosis or the answer options, which stay with the judge.
    modality = modality_for(setup.case.image_types, setup.case.objective)
    # Without a store nothing could be stored, so there are no refs and the lookup never loads: it only reports
    # why each expected image is missing.
    lookup = StoreImageLookup(setup.image_store, prepared.refs, reader,  # type: ignore[arg-type]
                              modality=modality, missing=prepared.missing, triage=triage)
    return _Images(setting, prepared, lookup, has_reader)


async def _saved_images(store: ImageStore | None, saved: Mapping[str, Any]) -> CaseImages:
    """The images a consultation started with, from its checkpoint: each saved ref the store still holds (or can
    fetch again with the same digest), and the reasons saved in its origin for those it never had."""
    origin = (saved.get("origin") or {}).get("images") or {}
    result = CaseImages(missing=[str(m) for m in origin.get("missing") or []], expected=True)
    for ref in saved.get("images") or []:
        if store is None:
            result.missing.append(f"{ref['id']}: {ref['source']}: no image store is configured to hold it")
            continue
        try:
            store.load(ref)
        except (ImageError, OSError):
            try:
                again = await store.add(ref["source"], image_id=ref["id"])
            except (ImageError, OSError) as exc:
                result.missing.append(f"{ref['id']}: no longer in the image cache, and fetching it again failed: {exc}")
                continue
            if again["sha256"] != ref["sha256"]:
                result.missing.append(f"{ref['id']}: {ref['source']} now holds different bytes (sha256 "
                                      f"{again['sha256']}, the consultation started with {ref['sha256']})")
                continue
        result.refs.append(ref)  # type: ignore[arg-type]
    return result


async def _stream(
    graph: Any,
    graph_input: Any,
    config: dict[str, Any],
    parts: ConsultationParts,
    on_entry: EntryCallback | None,
    durability: str = "sync",
    on_update: UpdateCallback | None = None,
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
            if on_update:
                on_update(update)


async def _transcript(
    setup: ConsultationSetup, state: Mapping[str, Any], thread_id: str, environment_mode: str, wall: float,
    images: _Images,
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
        "images": _images_block(state, images),
        "doctor": DoctorRules.from_state(state, setup.rules()).block(),
        **_deliberation(state),
        "outcome": {
            "final_diagnosis": diagnosis,
            "ended_by": state.get("ended_by"),
            "leak": any(leaks_diagnosis(case, text) for text in revealed),
            "leak_sources": sorted({f["source"] for f in state.get("findings", [])
                                    if f["source"].startswith("test:") and leaks_diagnosis(case, f["text"])}),
        },
        "verdict": score.verdict,
        "rubric": score.rubric,
        "totals": totals_of(dialogue, score.judge_usage, list(state.get("image_reads") or [])),
        "wall_seconds": round(wall, 3),
    }
