"""Clinical roles driven by a model (the doctor, the record navigator, the image reader) and the model backends that turn a spec string into a chat model.

``agents`` never imports ``tools``, ``graphs``, ``simulations`` or ``clinicflow``.
"""

from agents.backends import (
    BackendError,
    ModelSpec,
    ModelSpecError,
    build_chat_model,
    build_image_classifier,
    build_image_model,
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
    ImageBrief,
    ParseResult,
    decision_json_schema,
    parse_decision,
)
from agents.imaging import ImageInput, ImageRead, ImageReader, ImageTriage, modality_for
from agents.navigator import DateWindow, Navigator, check_citations, resolve_window

__all__ = [
    "BackendError",
    "DateWindow",
    "DifferentialEntry",
    "Doctor",
    "DoctorDecision",
    "DoctorTurn",
    "Exchange",
    "ImageBrief",
    "ImageInput",
    "ImageRead",
    "ImageReader",
    "ImageTriage",
    "ModelSpec",
    "ModelSpecError",
    "Navigator",
    "ParseResult",
    "build_chat_model",
    "build_image_classifier",
    "build_image_model",
    "check_citations",
    "decision_json_schema",
    "describe_spec",
    "ensure_embedded_checkpoint",
    "modality_for",
    "parse_decision",
    "parse_spec",
    "resolve_window",
    "split_thinking",
]
