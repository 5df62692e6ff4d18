"""The doctor role: structured decisions (ask, test, record, image, diagnose) from any chat model, parsed tolerantly.

``await Doctor(model, max_new_tokens=384, schema_hint=True).decide(objective, exchanges, turn, max_turns,
prior_differential=None, record=None, images=None)`` returns a ``DoctorTurn``; it never raises because of the model
and always diagnoses on the last turn. ``Exchange`` is one past turn; ``ImageBrief`` what the doctor is told about
the patient's images; ``DoctorDecision`` / ``DifferentialEntry`` the structured output with
``decision_json_schema()`` for constrained decoding; ``parse_decision`` the pure, tolerant parser (``ParseResult``);
``build_messages`` the append-only message list the model sees.
"""

from agents.doctor.agentclinic import (
    AgentClinicDoctor,
    agentclinic_doctor_biases,
    agentclinic_doctor_messages,
    has_diagnosis_tag,
)
from agents.doctor.decision import DifferentialEntry, DoctorDecision, decision_json_schema
from agents.doctor.doctor import Doctor, DoctorTurn
from agents.doctor.messages import Exchange, ImageBrief, build_messages
from agents.doctor.parsing import ParseResult, parse_decision

__all__ = [
    "AgentClinicDoctor",
    "DifferentialEntry",
    "Doctor",
    "DoctorDecision",
    "DoctorTurn",
    "Exchange",
    "ImageBrief",
    "ParseResult",
    "agentclinic_doctor_biases",
    "agentclinic_doctor_messages",
    "build_messages",
    "decision_json_schema",
    "has_diagnosis_tag",
    "parse_decision",
]
