"""One generation on a shared local model: generate under the model's lock, decode, clean up.

`generate_encoded` is the one generation path: it takes inputs that are already encoded (by the tokenizer for a
text prompt, by the processor for a prompt with images), so the text and image-text models share the same
stopping rules, thinking split and special-token clean-up.
Imports torch and transformers at module level, so only the transformers backends import it, lazily.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from .json_stop import json_object_end
from .registry import LoadedModel
from .repetition import RepeatedTail, find_repeated_tail
from .thinking import split_thinking

__all__ = ["JsonObjectStop", "LocalGeneration", "RepetitionStop", "generate_encoded"]

FinishReason = str  # "stop" | "length" | "repetition"


class RepetitionStop(StoppingCriteria):
    """Stop as soon as the generated ids end in a loop; remembers what it found so the caller can trim it."""

    def __init__(self, prompt_length: int, *, window: int = 160) -> None:
        self.prompt_length = prompt_length
        self.window = window  # enough for 3 copies of the longest period checked (40 tokens) with room to spare
        self.found: RepeatedTail | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: object = None, **kwargs: object) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row in range(input_ids.shape[0]):
            generated = input_ids[row, self.prompt_length :][-self.window :].tolist()
            tail = find_repeated_tail(generated)
            if tail is not None:
                self.found = tail
                done[row] = True
        return done


class JsonObjectStop(StoppingCriteria):
    """Stop once the reply's first JSON object has closed (the caller asked for JSON)."""

    def __init__(self, tokenizer: object, prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: object = None, **kwargs: object) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row in range(input_ids.shape[0]):
            # Only a token that carries a "}" can close the object: the whole reply is decoded just then.
            if "}" not in self.tokenizer.decode(input_ids[row, -1:].tolist(), skip_special_tokens=False):
                continue
            text = self.tokenizer.decode(input_ids[row, self.prompt_length :].tolist(), skip_special_tokens=False)
            done[row] = json_object_end(text) is not None
        return done


@dataclass(frozen=True)
class LocalGeneration:
    """The cleaned result of one local generation."""

    text: str
    thinking: str | None
    input_tokens: int
    output_tokens: int
    finish_reason: FinishReason


def _generation_config(loaded: LoadedModel, *, max_new_tokens: int, temperature: float) -> object:
    config = copy.deepcopy(loaded.model.generation_config)
    config.max_new_tokens = max_new_tokens
    config.max_length = None
    config.eos_token_id = loaded.eos_token_ids or None
    if config.pad_token_id is None:
        config.pad_token_id = loaded.tokenizer.pad_token_id or (loaded.eos_token_ids or [None])[0]
    if temperature > 0:
        config.do_sample = True
        config.temperature = temperature
    else:
        # Greedy: clear sampling knobs inherited from the model's defaults so transformers does not warn.
        config.do_sample = False
        config.temperature = None
        config.top_p = None
        config.top_k = None
    return config


def _cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    if not stop:
        return text, False
    positions = [text.find(s) for s in stop if s and s in text]
    if not positions:
        return text, False
    return text[: min(positions)], True


def _to_model(loaded: LoadedModel, inputs: Mapping[str, Any]) -> dict[str, Any]:
    # Pixel values come out of the processor as float32. SigLIP-based towers (Gemma 3) cast them themselves, but
    # not every vision tower does, and a bf16 copy is half the bytes to move: floating tensors follow the model's
    # dtype. Ids and masks only move device.
    dtype = getattr(torch, loaded.dtype, None)
    moved: dict[str, Any] = {}
    for name, value in inputs.items():
        if not isinstance(value, torch.Tensor):
            moved[name] = value
        elif value.is_floating_point() and isinstance(dtype, torch.dtype):
            moved[name] = value.to(loaded.device, dtype=dtype)
        else:
            moved[name] = value.to(loaded.device)
    return moved


def generate_encoded(
    loaded: LoadedModel,
    inputs: Mapping[str, Any],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    seed: int | None = None,
    stop: list[str] | None = None,
    json_reply: bool = False,
) -> LocalGeneration:
    """Generate from encoded model inputs (``input_ids`` plus whatever else the model takes, e.g. pixel values).

    Holds the model's lock while generating; safe to call from several threads at once.
    """
    tokenizer = loaded.tokenizer
    model_inputs = _to_model(loaded, inputs)
    prompt_length = int(model_inputs["input_ids"].shape[1])
    repetition = RepetitionStop(prompt_length)
    criteria: list[StoppingCriteria] = [repetition]
    if json_reply:
        criteria.append(JsonObjectStop(tokenizer, prompt_length))
    config = _generation_config(loaded, max_new_tokens=max_new_tokens, temperature=temperature)
    extra: dict[str, object] = {}
    if stop:
        extra = {"stop_strings": list(stop), "tokenizer": tokenizer}

    with loaded.lock:
        if temperature > 0 and seed is not None:
            # Inside the lock: the RNG is process-global, so seeding outside would race with other callers.
            torch.manual_seed(seed)
        with torch.inference_mode():
            output = loaded.model.generate(
                **model_inputs,
                generation_config=config,
                stopping_criteria=StoppingCriteriaList(criteria),
                **extra,
            )
    new_ids = output[0, prompt_length:].tolist()
    output_tokens = len(new_ids)

    if repetition.found is not None:
        new_ids = new_ids[: len(new_ids) - repetition.found.surplus]
        finish: FinishReason = "repetition"
    elif new_ids and new_ids[-1] in loaded.eos_token_ids:
        finish = "stop"
    elif output_tokens >= max_new_tokens:
        finish = "length"
    else:
        finish = "stop"  # a stop string or the end of the JSON object ended it

    # Keep special tokens while decoding so <unused94>/<unused95> survive until the thinking is split off.
    raw = tokenizer.decode(new_ids, skip_special_tokens=False)
    raw, hit_stop = _cut_at_stop(raw, stop)
    if hit_stop and finish == "length":
        finish = "stop"
    answer, thinking = split_thinking(raw)
    if json_reply:
        end = json_object_end(answer)
        if end is not None:
            answer = answer[:end]
    if loaded.special_pattern is not None:
        answer = loaded.special_pattern.sub("", answer).strip()
        thinking = loaded.special_pattern.sub("", thinking).strip() if thinking else thinking
    return LocalGeneration(
        text=answer,
        thinking=thinking or None,
        input_tokens=prompt_length,
        output_tokens=output_tokens,
        finish_reason=finish,
    )
