"""Placeholder; public names are listed as modules land."""
from .backends import BackendError, ModelSpec, ModelSpecError, build_chat_model, describe_spec, ensure_embedded_checkpoint, parse_spec, split_thinking  # noqa: F401,E501
from .doctor import DifferentialEntry, Doctor, DoctorDecision, DoctorTurn, Exchange, ParseResult, decision_json_schema, parse_decision  # noqa: F401,E501
