"""Chat model over local image-text transformers weights (MedGemma 4B through an ``hf:`` spec).

The image reader sends one human turn holding an image block and a text block. Here the images are decoded,
the conversation is rendered by the processor's chat template (which places one image marker per image), and
the processor encodes text and pixels together: it expands each marker into the model's image placeholder
tokens and resizes the images. Generation then goes through the same `generate_encoded` as the text model, so
stopping rules, thinking split and clean-up are shared. Weights load lazily and are shared through `registry`
under an "image-text" key; torch and transformers are imported only then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage

from .errors import ModelLoadError, ModelSpecError, UnsupportedInputError
from .registry import LoadedModel, get_or_load
from .transformers_chat import LocalChatModel
from .vision_format import to_vision_conversation

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["TransformersImageChatModel", "VisionPrompt", "encode_prompt", "render_prompt"]


@dataclass(frozen=True)
class VisionPrompt:
    """A rendered conversation: the template's text (one image marker per image) and the images, in order."""

    text: str
    images: list[Image]


def _image_marker(processor: Any) -> str | None:
    # What the template writes for an image and the processor expands (Gemma 3: "<start_of_image>").
    marker = getattr(processor, "image_token", None)
    return marker if isinstance(marker, str) and marker else None


def render_prompt(processor: Any, messages: list[BaseMessage], *, spec: str = "") -> VisionPrompt:
    """Render ``messages`` with the processor's chat template (system folded, same-role turns merged)."""
    conversation = to_vision_conversation(messages)
    if getattr(processor, "chat_template", None) is None:
        raise ModelLoadError(f"spec {spec!r}: the processor has no chat template, so images cannot be placed")
    text = processor.apply_chat_template(conversation.messages, tokenize=False, add_generation_prompt=True)
    marker = _image_marker(processor)
    if marker is not None and text.count(marker) != len(conversation.images):
        raise UnsupportedInputError(
            f"spec {spec!r}: the rendered prompt holds {text.count(marker)} image marker(s) {marker!r} for "
            f"{len(conversation.images)} image(s); either the chat template does not place images or the "
            "message text itself contains the marker"
        )
    return VisionPrompt(text=text, images=conversation.images)


def encode_prompt(processor: Any, prompt: VisionPrompt, *, spec: str = "") -> Any:
    """Encode text and images together (a ``BatchFeature`` of tensors: ids, mask, pixel values, ...)."""
    try:
        # The template already wrote BOS; letting the tokenizer add another would shift every position.
        return processor(
            text=[prompt.text],
            images=[prompt.images] if prompt.images else None,
            add_special_tokens=False,
            return_tensors="pt",
        )
    except (ValueError, TypeError) as exc:
        raise UnsupportedInputError(f"spec {spec!r}: the processor refused the prompt and images: {exc}") from exc


def count_image_tokens(loaded: LoadedModel, input_ids: Any) -> int:
    """How many image placeholder tokens the encoded prompt holds (0 when the model names no such id)."""
    if loaded.image_token_id is None:
        return 0
    return int((input_ids == loaded.image_token_id).sum().item())


class TransformersImageChatModel(LocalChatModel):
    """A local image-text model (``AutoModelForImageTextToText`` + ``AutoProcessor``) behind LangChain's chat API.

    Messages may hold text and inline image blocks (``{"type": "image", "base64", "mime_type"}`` or an
    ``image_url`` block with a data URL). Per-call kwargs as `TransformersChatModel`: ``max_new_tokens``,
    ``json_schema`` (stop when the JSON object closes), ``seed``. ``response_metadata`` adds ``image_tokens``
    (placeholder tokens in the prompt) and ``images`` (how many images were sent).
    """

    @property
    def _llm_type(self) -> str:
        return "clinicflow-transformers-image"

    def warm_up(self) -> LoadedModel:
        """Load (or fetch from the shared registry) the weights and processor now instead of on the first call."""
        if self.spec.kind != "hf":
            raise ModelSpecError(
                f"spec {self.spec.raw!r}: local image-text models load from hf:<hub id or path> specs only"
            )
        return get_or_load(
            self.spec.model,
            device=self.spec.device,
            dtype=self.spec.dtype,
            quant=self.spec.quant,
            spec_raw=self.spec.raw,
            task="image-text",
        )

    def render(self, messages: list[BaseMessage]) -> VisionPrompt:
        """The prompt text and images a call with ``messages`` would send (loads the processor if needed)."""
        return render_prompt(self.warm_up().processor, messages, spec=self.spec.raw)

    def _encode(self, loaded: LoadedModel, messages: list[BaseMessage]) -> tuple[Mapping[str, Any], dict[str, Any]]:
        prompt = render_prompt(loaded.processor, messages, spec=self.spec.raw)
        inputs = encode_prompt(loaded.processor, prompt, spec=self.spec.raw)
        return inputs, {"image_tokens": count_image_tokens(loaded, inputs["input_ids"]), "images": len(prompt.images)}
