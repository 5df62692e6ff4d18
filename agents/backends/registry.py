"""Process-wide registry of loaded local models, so roles that share a spec share one copy of the weights.

Keyed by (path, device, dtype, quant, task). The task ("text" or "image-text") is part of the key because the
same checkpoint folder loads as a different class with a different preprocessor for each (MedGemma 4B can be read
as a causal LM or as an image-text model), and the two must not be handed out for each other. Each entry carries
one `threading.Lock` that every generate call on it holds: transformers models are not safe to run from two
threads at once (shared KV-cache objects, global RNG for seeded sampling), and on a small machine running two
generations in parallel is not faster anyway.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .chat_format import TemplateQuirks, detect_quirks
from .devices import detect_accelerators, resolve_device, resolve_dtype
from .errors import BackendError, ModelLoadError
from .thinking import THINKING_CLOSE, THINKING_OPEN

__all__ = ["LoadedModel", "RegistryKey", "Task", "clear_registry", "get_or_load", "loaded_keys"]

Task = Literal["text", "image-text"]
RegistryKey = tuple[str, str, str, str | None, Task]

# Turn markers that some tokenizers do not flag as special but that must never reach the answer text.
_TURN_MARKERS = ("<end_of_turn>", "<start_of_turn>", "<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|eot_id|>")


@dataclass
class LoadedModel:
    """A model and tokenizer in memory, with what generation needs to know about them.

    Image-text entries also hold the ``processor`` (``tokenizer`` is then the processor's own tokenizer) and
    ``image_token_id``, the placeholder id the model scatters image features into.
    """

    key: RegistryKey
    model: Any
    tokenizer: Any
    device: str
    dtype: str
    model_type: str
    quirks: TemplateQuirks
    eos_token_ids: list[int]
    special_pattern: re.Pattern[str] | None
    load_seconds: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    processor: Any = None
    image_token_id: int | None = None


_registry: dict[RegistryKey, LoadedModel] = {}
_registry_guard = threading.Lock()
_load_locks: dict[RegistryKey, threading.Lock] = {}


def _normalise_path(path: str) -> str:
    candidate = Path(path).expanduser()
    return str(candidate.resolve()) if candidate.exists() else path


def _special_strings(tokenizer: Any) -> list[str]:
    strings = set(getattr(tokenizer, "all_special_tokens", []) or []) | set(_TURN_MARKERS)
    for added in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(added, "special", False):
            strings.add(str(added.content))
    # The thinking markers are split off before special tokens are removed; keep them out of the pattern.
    strings -= {THINKING_OPEN, THINKING_CLOSE, ""}
    return sorted(strings, key=len, reverse=True)


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    # Instruction templates end a turn with these; stopping on them keeps the model from writing the next turn.
    unk = tokenizer.unk_token_id
    for marker in ("<end_of_turn>", "<|im_end|>", "<|eot_id|>"):
        token_id = tokenizer.convert_tokens_to_ids(marker)
        if isinstance(token_id, int) and token_id >= 0 and token_id != unk:
            ids.add(token_id)
    return sorted(ids)


def _image_token_id(config: Any, processor: Any) -> int | None:
    # The model's own config names the id it replaces with image features: the truest count of image tokens.
    for holder in (config, getattr(config, "text_config", None)):
        for name in ("image_token_id", "image_token_index"):
            value = getattr(holder, name, None)
            if isinstance(value, int):
                return value
    ids = getattr(processor, "image_token_ids", None)
    return int(ids[0]) if ids else None


def _load(key: RegistryKey, requested_dtype: str, spec_raw: str) -> LoadedModel:
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoProcessor,
        AutoTokenizer,
    )

    path, device, dtype, quant, task = key
    started = time.perf_counter()
    config = AutoConfig.from_pretrained(path)
    model_type = str(getattr(config, "model_type", "") or "")
    # Checked again with the real model type: a local path or hub id need not say "gemma" in its name.
    resolve_dtype(requested_dtype, device, detect_accelerators(), model_type=model_type)
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if quant is not None:
        try:
            import bitsandbytes  # noqa: F401  (only to fail early with a clear message)
            from transformers import BitsAndBytesConfig
        except ImportError as exc:
            raise ModelLoadError(f"spec {spec_raw!r}: quant={quant} needs `pip install bitsandbytes`") from exc
        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=kwargs["dtype"])
            if quant == "4bit"
            else BitsAndBytesConfig(load_in_8bit=True)
        )
        kwargs["device_map"] = device
    model_class = AutoModelForImageTextToText if task == "image-text" else AutoModelForCausalLM
    model = model_class.from_pretrained(path, **kwargs)
    if quant is None:
        model = model.to(device)
    model.eval()
    processor = AutoProcessor.from_pretrained(path) if task == "image-text" else None
    tokenizer = processor.tokenizer if processor is not None else AutoTokenizer.from_pretrained(path)
    specials = _special_strings(tokenizer)
    return LoadedModel(
        key=key,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        model_type=model_type,
        quirks=detect_quirks(tokenizer, model_type),
        eos_token_ids=_eos_ids(model, tokenizer),
        special_pattern=re.compile("|".join(re.escape(s) for s in specials)) if specials else None,
        load_seconds=time.perf_counter() - started,
        processor=processor,
        image_token_id=_image_token_id(config, processor) if processor is not None else None,
    )


def get_or_load(
    path: str, *, device: str, dtype: str, quant: str | None, spec_raw: str, task: Task = "text"
) -> LoadedModel:
    """Return the shared model for these settings, loading it on first use (one loader per key at a time).

    ``task="image-text"`` loads ``AutoModelForImageTextToText`` with its ``AutoProcessor`` instead of a causal LM.
    """
    acc = detect_accelerators()
    try:
        concrete_device = resolve_device(device, acc)
        concrete_dtype = resolve_dtype(dtype, concrete_device, acc)
    except BackendError as exc:
        raise type(exc)(f"spec {spec_raw!r}: {exc}") from exc
    key: RegistryKey = (_normalise_path(path), concrete_device, concrete_dtype, quant, task)
    with _registry_guard:
        if key in _registry:
            return _registry[key]
        load_lock = _load_locks.setdefault(key, threading.Lock())
    with load_lock:
        with _registry_guard:
            if key in _registry:
                return _registry[key]
        try:
            loaded = _load(key, dtype, spec_raw)
        except BackendError as exc:
            if spec_raw in str(exc):
                raise
            raise type(exc)(f"spec {spec_raw!r}: {exc}") from exc
        except Exception as exc:
            raise ModelLoadError(f"spec {spec_raw!r}: cannot load model from {key[0]!r}: {exc}") from exc
        with _registry_guard:
            _registry[key] = loaded
        return loaded


def loaded_keys() -> list[RegistryKey]:
    """Keys of the models currently held (for `clinicflow models` and tests)."""
    with _registry_guard:
        return list(_registry)


def clear_registry() -> None:
    """Forget every loaded model so its memory can be freed (tests, long-lived servers switching models)."""
    with _registry_guard:
        _registry.clear()
        _load_locks.clear()
