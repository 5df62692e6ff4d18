"""Clinical roles driven by a model (the doctor) and the model backends that turn a spec string into a chat model.

``agents`` never imports ``tools``, ``graphs``, ``simulations`` or ``clinicflow``.
"""

from agents.backends import (
    BackendError,
    ModelSpec,
    ModelSpecError,
    build_chat_model,
    describe_spec,
    ensure_embedded_checkpoint,
    parse_spec,
    split_thinking,
)
from agents.doctor import (
    DifferentialEntry,
    Doctor,
    DoctorDecision,
    DoctorTurn,
    Exchange,
    ParseResult,
    decision_json_schema,
    parse_decision,
)

__all__ = [
    "BackendError",
    "DifferentialEntry",
    "Doctor",
    "DoctorDecision",
    "DoctorTurn",
    "Exchange",
    "ModelSpec",
    "ModelSpecError",
    "ParseResult",
    "build_chat_model",
    "decision_json_schema",
    "describe_spec",
    "ensure_embedded_checkpoint",
    "parse_decision",
    "parse_spec",
    "split_thinking",
]
