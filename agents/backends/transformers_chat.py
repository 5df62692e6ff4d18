"""Chat model over local transformers weights (the ``embedded`` and ``hf:`` specs).

Weights load lazily on the first call (or `warm_up`) and are shared through `registry`; torch and
transformers are imported only then, so building the chat model is cheap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field

from .chat_format import format_prompt, to_role_messages
from .embedded import ensure_embedded_checkpoint
from .registry import LoadedModel, get_or_load
from .results import make_result
from .spec import ModelSpec

__all__ = ["LocalChatModel", "TransformersChatModel"]


class LocalChatModel(BaseChatModel):
    """What every local transformers chat model shares: the spec and generation settings, one generate path
    (`generate_encoded`: stopping rules, thinking split, clean-up) and the async call in a worker thread.

    Subclasses say how weights load (``warm_up``) and how messages become model inputs (``_encode``).
    Per-call kwargs: ``max_new_tokens`` (int) overrides the instance cap; ``json_schema`` (dict) says the caller's
    prompt asks for a JSON object, so generation stops when that object closes (no constrained decoding locally);
    ``seed`` (int) overrides the instance seed for this call (a benchmark seeds each case attempt).
    """

    spec: ModelSpec
    temperature: float = Field(default=0.0, ge=0.0)
    max_new_tokens: int = Field(default=512, ge=1)
    seed: int | None = None

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.spec.raw, "temperature": self.temperature, "max_new_tokens": self.max_new_tokens}

    def warm_up(self) -> LoadedModel:
        raise NotImplementedError

    def _encode(self, loaded: LoadedModel, messages: list[BaseMessage]) -> tuple[Mapping[str, Any], dict[str, Any]]:
        """The model inputs for ``messages`` and any extra response metadata they imply."""
        raise NotImplementedError

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        from .local_generate import generate_encoded  # torch lives behind this import

        started = time.perf_counter()
        loaded = self.warm_up()
        inputs, extra = self._encode(loaded, messages)
        schema = kwargs.get("json_schema")
        result = generate_encoded(
            loaded,
            inputs,
            max_new_tokens=int(kwargs.get("max_new_tokens") or self.max_new_tokens),
            temperature=self.temperature,
            seed=kwargs.get("seed", self.seed),
            stop=stop,
            json_reply=schema is not None,
        )
        return make_result(
            text=result.text,
            thinking=result.thinking,
            spec=self.spec.raw,
            wall_seconds=time.perf_counter() - started,
            finish_reason=result.finish_reason,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            extra={"structured_output": "json_stop" if schema is not None else None, **extra},
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # generate() holds the model lock for seconds; a worker thread keeps the event loop serving others.
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)


class TransformersChatModel(LocalChatModel):
    """A local transformers text model behind the LangChain chat interface (per-call kwargs: `LocalChatModel`)."""

    cache_dir: Path | None = None

    @property
    def _llm_type(self) -> str:
        return "clinicflow-transformers"

    def model_path(self) -> str:
        """The checkpoint folder or hub id this chat model loads (converts the embedded model if needed)."""
        if self.spec.kind == "embedded":
            return str(ensure_embedded_checkpoint(self.cache_dir))
        return self.spec.model

    def warm_up(self) -> LoadedModel:
        """Load (or fetch from the shared registry) the weights now instead of on the first call."""
        return get_or_load(
            self.model_path(),
            device=self.spec.device,
            dtype=self.spec.dtype,
            quant=self.spec.quant,
            spec_raw=self.spec.raw,
        )

    def _encode(self, loaded: LoadedModel, messages: list[BaseMessage]) -> tuple[Mapping[str, Any], dict[str, Any]]:
        prompt = format_prompt(loaded.tokenizer, to_role_messages(messages), loaded.quirks)
        # The rendered template already holds BOS where the model wants it.
        encoded = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}, {}
