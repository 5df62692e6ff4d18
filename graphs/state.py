"""Typed state of the consultation graph.

State holds plain dictionaries (TypedDicts) so every checkpointer can serialise it without a type allow-list.
Lists that grow carry a named reducer and are append-only: the dialogue is replayed to the doctor as a message list
whose prefix never changes, so serving engines can reuse their prompt cache.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from tools.images import ImageRef

Action = Literal["ask", "test", "record", "image", "diagnose"]
# "safety": an order the consultation refused itself (a contraindication, or the budget), never a person.
Speaker = Literal["doctor", "patient", "measurement", "clinician", "record", "imaging", "safety"]
DoctorMode = Literal["single", "panel"]
EndedBy = Literal["doctor", "turn_budget", "budget", "clinician"]
# When the patient's images are read: all at intake ("start"), or when the doctor asks ("request").
ImageSetting = Literal["start", "request"]
ImageStatus = Literal["read", "unavailable", "no_reader", "failed"]


class DialogueEntry(TypedDict):
    """One utterance in the consultation, with what it cost."""

    turn: int
    role: Speaker
    text: str
    action: NotRequired[Action | None]
    # The doctor's full reply (thinking removed): replayed verbatim as the assistant message so the prompt prefix
    # stays identical from turn to turn.
    reply: NotRequired[str]
    thinking: NotRequired[str | None]
    model: NotRequired[str | None]
    input_tokens: NotRequired[int]
    output_tokens: NotRequired[int]
    seconds: NotRequired[float]
    calls: NotRequired[int]
    degraded: NotRequired[bool]


class Finding(TypedDict):
    """A fact the doctor learned, tagged with where it came from (``patient``, ``test:<name>``, ``clinician``,
    ``record``, ``image:<id>``, or ``image`` for an image that could not be had); record findings list the FHIR
    resources behind them (``Type/id/_history/v``) in ``refs``, image reads the image read
    (``image:<id>@sha256:<digest>``)."""

    turn: int
    source: str
    text: str
    refs: NotRequired[list[str]]
    # "F<n>": the 1-based position in the consultation's findings (append-only, so stable); what provenance cites.
    id: NotRequired[str]


class DifferentialItem(TypedDict):
    diagnosis: str
    probability: float


class DifferentialSnapshot(TypedDict):
    turn: int
    items: list[DifferentialItem]
    # Who wrote it ("doctor" or "panel"), the findings that moved it (ids), and the can't-miss diagnoses the panel
    # kept in it because no finding had excluded them yet.
    by: NotRequired[str]
    moved_by: NotRequired[list[str]]
    kept: NotRequired[list[str]]


class TestOrder(TypedDict):
    turn: int
    name: str
    available: bool
    # What the fee table made of it: the price charged, the table row (None when unmatched) and any safety warnings
    # (a warning does not stop a test; a block does, and a blocked order never reaches here).
    price: NotRequired[float]
    canonical: NotRequired[str | None]
    matched: NotRequired[bool]
    warnings: NotRequired[list[str]]


class CostEntry(TypedDict):
    """One charge of the cost ledger (``agents.panel.LedgerEntry`` as data)."""

    turn: int
    kind: Literal["visit", "test"]
    name: str
    canonical: str | None
    price: float
    matched: bool


class BlockedOrder(TypedDict):
    """A test the consultation refused to order: contraindicated by what is known, or over the budget."""

    turn: int
    test: str
    reasons: list[dict[str, Any]]  # {"rule", "severity", "reason", "sources"}


class ApprovalEntry(TypedDict):
    """A clinician's verdict on an order or a diagnosis the approval policy paused for."""

    turn: int
    action: Action
    text: str
    reasons: list[str]
    decision: Literal["approve", "edit", "reject"]
    edited: str | None
    note: str | None


class ImageReadEntry(TypedDict):
    """One image read (at intake or on the doctor's request) and what it cost; the findings are in ``findings``."""

    turn: int
    image_id: str | None
    status: ImageStatus
    sources: list[str]  # "image:<id>@sha256:<digest>" of what was read
    question: str | None  # what the doctor asked to look for; None at intake
    model: NotRequired[str | None]
    input_tokens: NotRequired[int]
    output_tokens: NotRequired[int]
    seconds: NotRequired[float]
    calls: NotRequired[int]
    degraded: NotRequired[bool]


class PendingAction(TypedDict):
    """The doctor's latest decision, waiting for the environment to answer it (or for a clinician to approve it:
    ``approval`` lists why it needs approval, and ``approved`` is set once a clinician has let it through)."""

    action: Action
    text: str
    approval: NotRequired[list[str]]
    approved: NotRequired[bool]
    forced: NotRequired[bool]  # a diagnosis the turn budget forced (recorded as ended_by "turn_budget")


class ConsultationInput(TypedDict):
    case_id: str
    objective: str
    max_turns: int
    # What started this consultation (case reference, model specs, rules), kept so that `--resume` can rebuild the
    # same environment in a new process. Opaque to the graph; never holds secrets.
    origin: NotRequired[dict[str, Any]]
    # When the consultation's images are read (default "request"); ignored without images.
    image_setting: NotRequired[ImageSetting]
    # Who decides: the one-node doctor ("single", the default) or the diagnostic panel ("panel", with its policy as
    # agents.panel.PanelPolicy.to_dict()).
    doctor: NotRequired[DoctorMode]
    panel_policy: NotRequired[dict[str, Any]]
    # The most the consultation may spend (USD, visits and tests); None: no limit. Applies to either doctor.
    budget: NotRequired[float | None]
    # When a clinician must approve: "none", "invasive", "expensive", "diagnosis" or "all"; and from what price a
    # test counts as expensive.
    approve: NotRequired[str]
    expensive_over: NotRequired[float]


class ConsultationState(ConsultationInput, total=False):
    dialogue: Annotated[list[DialogueEntry], operator.add]
    findings: Annotated[list[Finding], operator.add]
    differentials: Annotated[list[DifferentialSnapshot], operator.add]
    tests_ordered: Annotated[list[TestOrder], operator.add]
    turn: int
    pending: PendingAction | None
    final_diagnosis: str | None
    # "doctor" when the doctor chose to diagnose, "turn_budget" when the last turn forced it, "budget" when the money
    # ran out first, "clinician" when a clinician rejected the final diagnosis.
    ended_by: EndedBy | None
    # The health-record summary loaded at intake (cited lines, a bounded number of tokens), or None without one.
    record_summary: str | None
    # References to the images the consultation can read, set at intake; never the bytes (they stay in the store).
    images: list[ImageRef]
    image_reads: Annotated[list[ImageReadEntry], operator.add]
    # The cost ledger's charges, orders refused for safety or budget, and the clinician's approvals.
    costs: Annotated[list[CostEntry], operator.add]
    blocked: Annotated[list[BlockedOrder], operator.add]
    approvals: Annotated[list[ApprovalEntry], operator.add]
    # Set when a question round could not be paid for: the next decision is the final diagnosis.
    budget_exhausted: bool
    # What the record says that safety checks need (agents.panel.PatientFacts as data), read at intake.
    patient_facts: dict[str, Any] | None
    # The panel: every role's result (agents.panel.RoleResult.to_dict() plus "turn"), each turn's consensus, and the
    # current turn's member hypotheses after the can't-miss floor (what the four parallel roles work from).
    panel: Annotated[list[dict[str, Any]], operator.add]
    consensus: Annotated[list[dict[str, Any]], operator.add]
    panel_turn: dict[str, Any] | None


class ConsultationOutput(TypedDict, total=False):
    case_id: str
    dialogue: list[DialogueEntry]
    findings: list[Finding]
    differentials: list[DifferentialSnapshot]
    tests_ordered: list[TestOrder]
    turn: int
    final_diagnosis: str | None
    ended_by: EndedBy | None
    record_summary: str | None
    images: list[ImageRef]
    image_reads: list[ImageReadEntry]
    costs: list[CostEntry]
    blocked: list[BlockedOrder]
    approvals: list[ApprovalEntry]
    patient_facts: dict[str, Any] | None
    panel: list[dict[str, Any]]
    consensus: list[dict[str, Any]]
