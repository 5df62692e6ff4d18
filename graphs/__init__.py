"""LangGraph state machines: the consultation graph (with an optional health record and images), the record
question-answering graph, their typed state, the environment, record and image interfaces, checkpointers."""

from graphs.checkpointers import open_checkpointer
from graphs.consultation import (
    ConsultationParts,
    DoctorRole,
    build_consultation_graph,
    consultation_mermaid,
    exchanges_from,
    recursion_limit_for,
    route_after_doctor,
)
from graphs.environment import Environment, Observation
from graphs.fhir_store import FhirRecordStore
from graphs.image_lookup import ImageLookup, ImageReply
from graphs.image_reading import StoreImageLookup
from graphs.interactive import InteractiveEnvironment, InteractiveRequest
from graphs.record_lookup import RecordLookup, RecordReply, RecordSummary
from graphs.record_qa import RecordAnswer, ask_record, build_record_qa_graph, record_qa_mermaid
from graphs.record_store import InMemoryRecordStore, RecordStore, RecordStoreError, UnsupportedSearchError
from graphs.state import ConsultationState, DialogueEntry, DifferentialSnapshot, Finding, ImageReadEntry, TestOrder
from graphs.store_lookup import StoreRecordLookup

__all__ = [
    "ConsultationParts",
    "ConsultationState",
    "DialogueEntry",
    "DifferentialSnapshot",
    "DoctorRole",
    "Environment",
    "FhirRecordStore",
    "Finding",
    "ImageLookup",
    "ImageReadEntry",
    "ImageReply",
    "InMemoryRecordStore",
    "InteractiveEnvironment",
    "InteractiveRequest",
    "Observation",
    "RecordAnswer",
    "RecordLookup",
    "RecordReply",
    "RecordStore",
    "RecordStoreError",
    "RecordSummary",
    "StoreImageLookup",
    "StoreRecordLookup",
    "TestOrder",
    "UnsupportedSearchError",
    "ask_record",
    "build_consultation_graph",
    "build_record_qa_graph",
    "consultation_mermaid",
    "exchanges_from",
    "open_checkpointer",
    "record_qa_mermaid",
    "recursion_limit_for",
    "route_after_doctor",
]
