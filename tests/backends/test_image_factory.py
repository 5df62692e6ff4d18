"""Which image backend a spec builds; nothing loads and nothing is contacted."""

from __future__ import annotations

import pytest

from agents.backends import (
    IMAGE_MODEL_SPEC,
    ModelSpecError,
    TransformersImageChatModel,
    build_chat_model,
    build_image_model,
    parse_spec,
)
from agents.backends.openai_chat import OpenAICompatChatModel
from agents.backends.transformers_chat import TransformersChatModel


def test_hf_spec_builds_the_local_image_model_with_its_settings() -> None:
    model = build_image_model("hf:google/medgemma-4b-it?dtype=bf16", temperature=0.3, max_new_tokens=64, seed=7)
    assert isinstance(model, TransformersImageChatModel)
    assert model.spec == parse_spec("hf:google/medgemma-4b-it?dtype=bf16") and model.spec.dtype == "bfloat16"
    assert (model.temperature, model.max_new_tokens, model.seed) == (0.3, 64, 7)
    # The text factory still gives the text model for the same spec: the role decides, not the checkpoint.
    assert isinstance(build_chat_model("hf:google/medgemma-4b-it"), TransformersChatModel)


def test_openai_spec_builds_the_shared_client_with_its_settings() -> None:
    model = build_image_model(
        "openai:google/medgemma-4b-it@http://gpu-box:8000/v1/", timeout_s=9.0, max_retries=1, api_key="k", seed=3
    )
    assert isinstance(model, OpenAICompatChatModel)
    assert (model.model_name, model.base_url, model.timeout_s, model.max_retries, model.seed) == (
        "google/medgemma-4b-it",
        "http://gpu-box:8000/v1",
        9.0,
        1,
        3,
    )
    assert model.api_key is not None and model.api_key.get_secret_value() == "k"


@pytest.mark.parametrize("spec", ["embedded", "embedded?device=cpu"])
def test_embedded_is_refused_naming_the_image_model(spec: str) -> None:
    with pytest.raises(ModelSpecError) as info:
        build_image_model(spec)
    assert "text-only" in str(info.value) and IMAGE_MODEL_SPEC in str(info.value) and spec in str(info.value)
    assert IMAGE_MODEL_SPEC == "hf:google/medgemma-4b-it"


def test_gemma_fp16_and_bad_specs_refused_by_name() -> None:
    with pytest.raises(ModelSpecError, match="float16 is refused"):
        build_image_model("hf:google/medgemma-4b-it?dtype=fp16")
    with pytest.raises(ModelSpecError, match="unknown backend"):
        build_image_model("vllm:medgemma")
