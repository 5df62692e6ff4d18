from __future__ import annotations

import pytest

from agents.backends import ModelSpecError, build_chat_model, describe_spec, parse_spec
from agents.backends.openai_chat import OpenAICompatChatModel
from agents.backends.transformers_chat import TransformersChatModel


def test_embedded_defaults() -> None:
    spec = parse_spec("embedded")
    assert (spec.kind, spec.model, spec.device, spec.dtype, spec.quant) == ("embedded", "", "auto", "auto", None)
    assert str(spec) == "embedded"


def test_embedded_with_options() -> None:
    spec = parse_spec("embedded?device=cuda:0&dtype=bf16")
    assert (spec.device, spec.dtype) == ("cuda:0", "bfloat16")


@pytest.mark.parametrize(
    ("raw", "model", "device", "dtype", "quant"),
    [
        ("hf:google/medgemma-27b-text-it", "google/medgemma-27b-text-it", "auto", "auto", None),
        (
            "hf:google/medgemma-27b-text-it?device=cuda&dtype=bfloat16&quant=4bit",
            "google/medgemma-27b-text-it",
            "cuda",
            "bfloat16",
            "4bit",
        ),
        ("hf:/models/my model?device=cpu&dtype=float32", "/models/my model", "cpu", "float32", None),
        ("hf:./ckpt?dtype=auto", "./ckpt", "auto", "auto", None),
    ],
)
def test_hf_specs(raw: str, model: str, device: str, dtype: str, quant: str | None) -> None:
    spec = parse_spec(raw)
    assert (spec.kind, spec.model, spec.device, spec.dtype, spec.quant) == ("hf", model, device, dtype, quant)
    assert spec.raw == raw


@pytest.mark.parametrize(
    ("raw", "model", "url"),
    [
        (
            "openai:google/medgemma-27b-text-it@http://gpu-box:8000/v1",
            "google/medgemma-27b-text-it",
            "http://gpu-box:8000/v1",
        ),
        ("openai:medgemma:27b@http://localhost:11434/v1/", "medgemma:27b", "http://localhost:11434/v1"),
        (
            "openai:hf.co/unsloth/medgemma-27b-text-it-GGUF:Q4_K_M@https://llm.example.org/api/v1",
            "hf.co/unsloth/medgemma-27b-text-it-GGUF:Q4_K_M",
            "https://llm.example.org/api/v1",
        ),
        ("openai:m@http://user:pw@proxy:8080/v1", "m", "http://user:pw@proxy:8080/v1"),
    ],
)
def test_openai_specs(raw: str, model: str, url: str) -> None:
    spec = parse_spec(raw)
    assert (spec.kind, spec.model, spec.base_url) == ("openai", model, url)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "empty spec"),
        ("   ", "empty spec"),
        ("llama:foo", "unknown backend 'llama'"),
        ("medgemma", "unknown backend 'medgemma'"),
        ("hf:", "missing hub id or local path"),
        ("hf", "needs a ':'"),
        ("openai:medgemma", "expected openai:<model>@<http(s)://"),
        ("openai:@http://host/v1", "missing model name"),
        ("openai:m@ftp://host/v1", "expected openai:<model>@<http(s)://"),
        ("openai:m@http://", "has no host"),
        ("embedded:smollm", "takes no model name"),
        ("embedded?quant=4bit", "unknown option 'quant' for embedded"),
        ("hf:x?device=tpu", "device 'tpu'"),
        ("hf:x?dtype=int3", "dtype 'int3'"),
        ("hf:x?quant=2bit", "quant '2bit'"),
        ("hf:x?quant=4bit&device=cpu", "needs a CUDA GPU"),
        ("hf:x?device=cpu&device=cuda", "given twice"),
        ("hf:x?device", "cannot read options"),
        ("hf:google/medgemma-4b-it?dtype=float16", "float16 is refused for Gemma"),
        ("embedded?dtype=fp16", "float16 is refused for Gemma"),
    ],
)
def test_bad_specs_say_what_is_wrong_and_show_forms(raw: str, says: str) -> None:
    with pytest.raises(ModelSpecError) as info:
        parse_spec(raw)
    text = str(info.value)
    assert says in text
    assert "accepted forms" in text and "openai:<model>@<http(s) base url>" in text
    assert isinstance(info.value, ValueError)  # callers that catch ValueError still see it


def test_build_picks_backend_without_loading_anything() -> None:
    local = build_chat_model("embedded", temperature=0.3, max_new_tokens=7, seed=4)
    assert isinstance(local, TransformersChatModel)
    assert (local.temperature, local.max_new_tokens, local.seed) == (0.3, 7, 4)
    remote = build_chat_model("openai:m@http://127.0.0.1:9/v1", timeout_s=5, max_retries=1, api_key="sk-abc")
    assert isinstance(remote, OpenAICompatChatModel)
    assert (remote.model_name, remote.base_url, remote.timeout_s, remote.max_retries) == (
        "m",
        "http://127.0.0.1:9/v1",
        5,
        1,
    )
    assert "sk-abc" not in repr(remote) and "sk-abc" not in str(remote.model_dump())


def test_build_accepts_parsed_spec() -> None:
    spec = parse_spec("hf:some/model?device=cpu")
    model = build_chat_model(spec)
    assert isinstance(model, TransformersChatModel) and model.spec == spec


def test_describe_spec_forms(tmp_path) -> None:
    remote = describe_spec("openai:m@http://box:8000/v1")
    assert remote["kind"] == "openai" and remote["url"] == "http://box:8000/v1/chat/completions"
    hub = describe_spec("hf:google/medgemma-27b-text-it?device=cuda")
    assert (hub["kind"], hub["device"], hub["path"]) == ("hf", "cuda", "(hub id)")
    local = describe_spec(f"hf:{tmp_path}")
    assert local["path"] == str(tmp_path.resolve())
    embedded = describe_spec("embedded", cache_dir=tmp_path)
    assert embedded["kind"] == "embedded" and embedded["cached"] == "no"
    assert embedded["path"].startswith(str(tmp_path))
