"""The doctor role: structured decisions (ask, test, diagnose) from any chat model, parsed tolerantly.

Public names: ``Doctor`` (``await Doctor(model).decide(objective, exchanges, turn, max_turns)``), its result
``DoctorTurn``, the dialogue unit ``Exchange``, the decision types ``DoctorDecision`` / ``DifferentialEntry`` with
``decision_json_schema()``, and the pure parser ``parse_decision`` returning a ``ParseResult``.
"""

from agents.doctor.decision import DifferentialEntry, DoctorDecision, decision_json_schema
from agents.doctor.doctor import Doctor, DoctorTurn
from agents.doctor.messages import Exchange, build_messages
from agents.doctor.parsing import ParseResult, parse_decision

__all__ = [
    "DifferentialEntry",
    "Doctor",
    "DoctorDecision",
    "DoctorTurn",
    "Exchange",
    "ParseResult",
    "build_messages",
    "decision_json_schema",
    "parse_decision",
]
