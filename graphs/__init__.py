"""LangGraph state machines: the consultation graph, its typed state, the environment interface, checkpointers."""

from graphs.checkpointers import open_checkpointer
from graphs.consultation import (
    build_consultation_graph,
    consultation_mermaid,
    exchanges_from,
    recursion_limit_for,
    route_after_doctor,
)
from graphs.environment import Environment, Observation
from graphs.interactive import InteractiveEnvironment, InteractiveRequest
from graphs.state import ConsultationState, DialogueEntry, DifferentialSnapshot, Finding, TestOrder

__all__ = [
    "ConsultationState",
    "DialogueEntry",
    "DifferentialSnapshot",
    "Environment",
    "Finding",
    "InteractiveEnvironment",
    "InteractiveRequest",
    "Observation",
    "TestOrder",
    "build_consultation_graph",
    "consultation_mermaid",
    "exchanges_from",
    "open_checkpointer",
    "recursion_limit_for",
    "route_after_doctor",
]
