"""``StoreRecordLookup``: the consultation's ``RecordLookup`` over any ``RecordStore`` (a FHIR server, a bundle).

The intake summary is computed without a model (``tools.records``: snapshot, lab trends, a token budget); each
``record`` action runs the question-answering graph, whose answer keeps only citations of resources it fetched;
``facts`` gives the contraindication checks the patient's conditions, allergies, medications, devices, kidney and
clotting labs and pregnancy status, each with its versioned source. The record is fetched once per consultation by
the store and reused by all three.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from agents.navigator import Navigator
from graphs.record_lookup import RecordReply, RecordSummary
from graphs.record_qa import ask_record, build_record_qa_graph
from graphs.record_store import RecordStore
from tools.records import build_snapshot, patient_facts, render_snapshot

__all__ = ["StoreRecordLookup"]


def _as_datetime(now: date | datetime | None) -> datetime | None:
    if now is None or isinstance(now, datetime):
        return now
    return datetime.combine(now, datetime.min.time())


class StoreRecordLookup:
    """One patient's record as the consultation graph reads it."""

    def __init__(
        self,
        store: RecordStore,
        navigator: Navigator,
        patient_id: str,
        *,
        now: date | datetime | None = None,
        summary_tokens: int = 1200,
    ) -> None:
        self.store = store
        self.navigator = navigator
        self.patient_id = patient_id
        self.now = now
        self.summary_tokens = summary_tokens
        self._graph: Any = None

    @property
    def patient(self) -> str:
        return f"Patient/{self.patient_id}"

    async def _resources(self) -> list[dict[str, Any]]:
        resources = await self.store.patient_resources(self.patient_id)
        if not any(r.get("resourceType") == "Patient" and r.get("id") == self.patient_id for r in resources):
            raise LookupError(f"{self.patient} is not in the record store")
        return resources

    async def summary(self) -> RecordSummary:
        resources = await self._resources()
        snapshot = build_snapshot(resources, now=_as_datetime(self.now))
        text = render_snapshot(snapshot, token_budget=self.summary_tokens)
        # Only what survived the token budget: the finding's provenance is what the doctor actually read.
        sources = list(dict.fromkeys(item.versioned_source for item in snapshot.items() if item.cite() in text))
        as_of = snapshot.as_of.isoformat() if snapshot.as_of is not None else None
        return RecordSummary(text=text, patient=self.patient, sources=sources, as_of=as_of)

    async def facts(self) -> dict[str, Any]:
        """The ``PatientFacts`` dict of the record (``tools.records.facts``), pregnancy windows anchored at ``now``.

        Raises LookupError when the patient is not in the store, as ``summary`` does."""
        return patient_facts(await self._resources(), now=_as_datetime(self.now))

    async def ask(self, question: str) -> RecordReply:
        if self._graph is None:
            self._graph = build_record_qa_graph(self.navigator, self.store)
        answer = await ask_record(self._graph, self.patient_id, question, self.now)
        return RecordReply(
            text=answer.answer,
            sources=list(answer.sources or answer.citations),
            model=answer.model,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            seconds=answer.model_seconds,
            calls=answer.model_calls,
            degraded=answer.degraded,
        )
