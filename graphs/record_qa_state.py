"""Typed state and output of the record question-answering graph.

State holds plain dictionaries (TypedDicts) so any checkpointer can serialise it. Raw FHIR resources never enter
it: the fetch node reduces each resource to its fact line and the references it needs followed, so a checkpoint
holds lines and references (tens of kilobytes for a whole Synthea record), not bundles. Lists that grow carry a
named reducer (``extend_or_reset``): nodes append, and ``resolve_dates`` empties them so that a thread can be
asked a second question without the first one's facts.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agents.navigator import DateWindow

T = TypeVar("T")


def extend_or_reset(left: list[T] | None, right: list[T] | None) -> list[T]:
    """Append ``right``; ``None`` empties the list, so a new question on a used thread starts clean."""
    return [] if right is None else [*(left or []), *right]


class FactEntry(TypedDict):
    """One fetched resource as the answer step sees it."""

    reference: str  # "Type/id"
    version: str | None
    day: str | None  # YYYY-MM-DD of its clinical date
    line: str  # "[Type/id] YYYY-MM-DD text"


class LinkEntry(TypedDict):
    """A reference a fact needs followed (an Observation's encounter, a prescription's Medication)."""

    source: str
    field: str
    target: str


class FollowedEntry(TypedDict):
    """A followed resource: shown beside the facts that point to it."""

    reference: str
    version: str | None
    text: str


class RequestEntry(TypedDict):
    """One store request and how it went (``round`` 0 is the first fetch, 1 the requery, 2 following)."""

    round: int
    resource_type: str
    params: dict[str, str | list[str]]
    found: int
    error: str | None


class StepEntry(TypedDict):
    """One navigator step's cost and outcome."""

    step: Literal["plan", "answer"]
    calls: int
    input_tokens: int
    output_tokens: int
    seconds: float
    model: str | None
    degraded: bool
    reason: str
    error: str | None


class RecordQaInput(TypedDict):
    patient_id: str
    question: str
    now: NotRequired[str | None]  # ISO date or dateTime the question is asked at; default today


class RecordQaState(RecordQaInput, total=False):
    today: str
    window: dict[str, object]  # DateWindow, JSON
    manifest: str
    catalog: dict[str, dict[str, str]]  # type -> code -> display
    plan: list[dict[str, object]]  # PlannedFetch, JSON
    facts: Annotated[list[FactEntry], extend_or_reset]
    links: Annotated[list[LinkEntry], extend_or_reset]
    followed: Annotated[list[FollowedEntry], extend_or_reset]
    requests: Annotated[list[RequestEntry], extend_or_reset]
    steps: Annotated[list[StepEntry], extend_or_reset]
    widened: str | None
    draft: str
    result: dict[str, object]  # RecordAnswer, JSON


class RecordQaOutput(TypedDict, total=False):
    result: dict[str, object]


class RecordAnswer(BaseModel):
    """The answer to one record question, with its provenance and what producing it cost.

    ``citations`` are the ``Type/id`` the final answer cites, all of them fetched; ``sources`` the same with their
    versions. ``dropped_citations`` were in the model's answer but not fetched, and were removed from the text;
    ``unsupported_sentences`` are sentences left without a valid citation (kept, flagged). ``degraded`` is True when
    a deterministic fallback replaced the model's plan or answer.
    """

    model_config = ConfigDict(frozen=True)

    patient_id: str
    question: str
    answer: str
    citations: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    dropped_citations: list[str] = Field(default_factory=list)
    unsupported_sentences: list[str] = Field(default_factory=list)
    fact_count: int = 0
    types_fetched: list[str] = Field(default_factory=list)
    window: DateWindow
    requeried: bool = False
    widened: str | None = None
    plan_source: Literal["model", "fallback", "none"] = "none"
    degraded: bool = False
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    model_seconds: float = 0.0
    model: str | None = None
    store_requests: int = 0
    errors: list[str] = Field(default_factory=list)
