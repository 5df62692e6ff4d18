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
Speaker = Literal["doctor", "patient", "measurement", "clinician", "record", "imaging"]
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


class DifferentialItem(TypedDict):
    diagnosis: str
    probability: float


class DifferentialSnapshot(TypedDict):
    turn: int
    items: list[DifferentialItem]


class TestOrder(TypedDict):
    turn: int
    name: str
    available: bool


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
    """The doctor's latest decision, waiting for the environment to answer it."""

    action: Action
    text: str


class ConsultationInput(TypedDict):
    case_id: str
    objective: str
    max_turns: int
    # What started this consultation (case reference, model specs, rules), kept so that `--resume` can rebuild the
    # same environment in a new process. Opaque to the graph; never holds secrets.
    origin: NotRequired[dict[str, Any]]
    # When the consultation's images are read (default "request"); ignored without images.
    image_setting: NotRequired[ImageSetting]


class ConsultationState(ConsultationInput, total=False):
    dialogue: Annotated[list[DialogueEntry], operator.add]
    findings: Annotated[list[Finding], operator.add]
    differentials: Annotated[list[DifferentialSnapshot], operator.add]
    tests_ordered: Annotated[list[TestOrder], operator.add]
    turn: int
    pending: PendingAction | None
    final_diagnosis: str | None
    # "doctor" when the doctor chose to diagnose, "turn_budget" when the last turn forced it.
    ended_by: Literal["doctor", "turn_budget"] | None
    # The health-record summary loaded at intake (cited lines, a bounded number of tokens), or None without one.
    record_summary: str | None
    # References to the images the consultation can read, set at intake; never the bytes (they stay in the store).
    images: list[ImageRef]
    image_reads: Annotated[list[ImageReadEntry], operator.add]


class ConsultationOutput(TypedDict, total=False):
    case_id: str
    dialogue: list[DialogueEntry]
    findings: list[Finding]
    differentials: list[DifferentialSnapshot]
    tests_ordered: list[TestOrder]
    turn: int
    final_diagnosis: str | None
    ended_by: Literal["doctor", "turn_budget"] | None
    record_summary: str | None
    images: list[ImageRef]
    image_reads: list[ImageReadEntry]
