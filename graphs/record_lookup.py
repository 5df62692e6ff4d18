"""The consultation's view of a patient's health record: a summary at intake and answers to lookups.

The consultation graph does not know where a record comes from. ``RecordLookup`` is what it needs: a compact
summary to open the consultation with, and an answer (with ``[Type/id]`` citations) to each ``record`` action.
``graphs.fhir_lookup.FhirRecordLookup`` implements it over a FHIR server; tests implement it in a few lines.

Errors a lookup may raise are reported to the doctor as text and recorded; they never end the consultation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class RecordSummary:
    """The record summary the doctor reads at intake: text whose every line cites its source."""

    text: str
    patient: str  # "Patient/<id>"
    sources: list[str] = field(default_factory=list)  # "Type/id/_history/v" (or "Type/id") behind the lines
    as_of: str | None = None


@dataclass(frozen=True)
class RecordReply:
    """The answer to one lookup, with the citations that survived checking and what it cost."""

    text: str
    sources: list[str] = field(default_factory=list)
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0
    degraded: bool = False


@runtime_checkable
class RecordLookup(Protocol):
    """A patient's record as the consultation sees it."""

    @property
    def patient(self) -> str:
        """``Patient/<id>``."""
        ...

    async def summary(self) -> RecordSummary:
        """The record summary (computed without a model) to load at intake."""
        ...

    async def ask(self, question: str) -> RecordReply:
        """Answer one question from the record, citing ``[Type/id]`` for each fact."""
        ...
