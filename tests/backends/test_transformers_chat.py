from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from agents.backends import ModelLoadError, ModelSpecError, build_chat_model
from agents.backends.json_stop import json_object_end
from agents.backends.transformers_chat import TransformersChatModel

from .conftest import BENCH

PROMPTS = [
    [SystemMessage("You are a concise clinician."), HumanMessage("Name one symptom of a heart attack.")],
    [HumanMessage("What organ pumps blood?")],
]


def _embedded(models_dir: Path, **kwargs) -> TransformersChatModel:
    model = build_chat_model("embedded?device=cpu", cache_dir=models_dir, **kwargs)
    assert isinstance(model, TransformersChatModel)
    return model


def _check_contract(reply: AIMessage, spec: str) -> None:
    assert isinstance(reply.content, str)
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    meta = reply.response_metadata
    assert meta["model"] == spec
    assert isinstance(meta["wall_seconds"], float) and meta["wall_seconds"] > 0
    assert meta["finish_reason"] in {"stop", "length", "repetition"}
    assert "thinking" in meta
    for marker in ("<|im_end|>", "<|im_start|>", "<|endoftext|>", "<unused94>"):
        assert marker not in reply.content


@pytest.mark.slow
def test_embedded_generates_real_tokens(embedded_checkpoint: Path, models_dir: Path) -> None:
    model = _embedded(models_dir, max_new_tokens=12)
    model.warm_up()
    reply = model.invoke(PROMPTS[0])
    _check_contract(reply, "embedded?device=cpu")
    assert len(reply.content.split()) >= 3  # real words, not an empty or special-token-only answer
    assert reply.usage_metadata["output_tokens"] <= 12
    BENCH["embedded greedy tokens/s on CPU"] = (
        f"{reply.usage_metadata['output_tokens'] / reply.response_metadata['wall_seconds']:.1f} "
        f"({reply.usage_metadata['output_tokens']} tokens incl. prompt processing)"
    )


@pytest.mark.slow
def test_max_new_tokens_per_call_override(embedded_checkpoint: Path, models_dir: Path) -> None:
    reply = _embedded(models_dir, max_new_tokens=50).invoke(PROMPTS[1], max_new_tokens=3)
    assert reply.usage_metadata["output_tokens"] == 3
    assert reply.response_metadata["finish_reason"] == "length"


@pytest.mark.slow
def test_stop_strings_end_the_reply(embedded_checkpoint: Path, models_dir: Path) -> None:
    reply = _embedded(models_dir, max_new_tokens=12).invoke(PROMPTS[1], stop=[" "])
    assert reply.content and " " not in reply.content
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.usage_metadata["output_tokens"] < 12


@pytest.mark.slow
def test_repetition_loop_is_stopped_and_trimmed(embedded_checkpoint: Path, models_dir: Path) -> None:
    # SmolLM2-135M answers this greedy with "100000000..." until stopped: a real loop, not a staged one.
    prompt = "Count: " + "apple, " * 13
    reply = _embedded(models_dir, max_new_tokens=60).invoke([HumanMessage(prompt)])
    assert reply.response_metadata["finish_reason"] == "repetition"
    assert reply.usage_metadata["output_tokens"] < 60
    assert "0" * 24 not in reply.content  # trimmed to one copy of the repeated block


@pytest.mark.slow
def test_roles_share_one_model_and_concurrent_callers_do_not_interfere(
    embedded_checkpoint: Path, models_dir: Path
) -> None:
    doctor, patient = _embedded(models_dir, max_new_tokens=8), _embedded(models_dir, max_new_tokens=8)
    assert doctor.warm_up() is patient.warm_up()  # one copy of the weights, one lock
    expected = [doctor.invoke(PROMPTS[0]).content, patient.invoke(PROMPTS[1]).content]
    assert expected[0] != expected[1]

    with ThreadPoolExecutor(max_workers=2) as pool:
        pairs = zip([doctor, patient], PROMPTS, strict=True)
        threaded = list(pool.map(lambda pair: pair[0].invoke(pair[1]).content, pairs))
    assert threaded == expected  # greedy: any cross-talk between the two calls would change a reply

    async def both() -> tuple[list[str], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(ticker())
        replies = await asyncio.gather(doctor.ainvoke(PROMPTS[0]), patient.ainvoke(PROMPTS[1]))
        beat.cancel()
        return [r.content for r in replies], ticks

    started = time.perf_counter()
    replies, ticks = asyncio.run(both())
    elapsed = time.perf_counter() - started
    assert replies == expected
    # The loop kept running while the model generated: generation happened off the event loop.
    assert ticks >= min(10, int(elapsed / 0.01) // 4)


@pytest.mark.slow
def test_json_reply_stops_when_the_object_closes(embedded_checkpoint: Path, models_dir: Path) -> None:
    schema = {"type": "object", "properties": {"diagnosis": {"type": "string"}}, "required": ["diagnosis"]}
    prompt = [HumanMessage('Reply with one JSON object like {"diagnosis": "..."}. Fever and a stiff neck.')]
    model = _embedded(models_dir, max_new_tokens=120)
    reply = model.invoke(prompt, json_schema=schema)
    free = model.invoke(prompt)
    assert reply.response_metadata["structured_output"] == "json_stop"
    # Whatever the model writes before the object, nothing follows its closing brace.
    assert reply.content.rstrip().endswith("}") and json_object_end(reply.content) == len(reply.content.rstrip())
    assert reply.usage_metadata["output_tokens"] <= free.usage_metadata["output_tokens"]


# --- a tiny random-weight Gemma 3 with the real Gemma 3 tokenizer ----------------------------------------------


@pytest.fixture(scope="module")
def tiny_gemma_dir(gemma_tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=len(gemma_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=512,
        sliding_window=64,
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-model")  # no "gemma" in the path: the refusal must come from the config
    Gemma3ForCausalLM(config).save_pretrained(out)
    gemma_tokenizer.save_pretrained(out)
    return out


@pytest.mark.slow
def test_tiny_gemma_takes_system_message_and_runs(tiny_gemma_dir: Path) -> None:
    spec = f"hf:{tiny_gemma_dir}?device=cpu"
    model = build_chat_model(spec, max_new_tokens=5)
    loaded = model.warm_up()
    assert loaded.model_type == "gemma3_text" and loaded.quirks.fold_system and loaded.quirks.alternate
    assert loaded.dtype == "float32"
    assert loaded.tokenizer.convert_tokens_to_ids("<end_of_turn>") in loaded.eos_token_ids
    reply = model.invoke([SystemMessage("You are terse."), HumanMessage("Hi"), HumanMessage("again")])
    _check_contract(reply, spec)
    assert "<end_of_turn>" not in reply.content and "<start_of_turn>" not in reply.content
    # Special-token strings are removed after the thinking split, which needs the thinking markers intact.
    assert loaded.special_pattern.sub("", "<unused94>a<end_of_turn><eos><pad>b") == "<unused94>ab"


@pytest.mark.slow
def test_sampling_is_seeded_and_greedy_is_the_default(tiny_gemma_dir: Path) -> None:
    spec = f"hf:{tiny_gemma_dir}?device=cpu"
    prompt = [HumanMessage("Hi")]

    def sample(seed: int) -> str:
        return build_chat_model(spec, temperature=1.0, seed=seed, max_new_tokens=6).invoke(prompt).content

    assert sample(1) == sample(1)
    assert len({sample(1), sample(2), sample(3)}) > 1  # 262k-token vocabulary, random weights: seeds differ
    # A per-call seed (a benchmark seeds each attempt) wins over the instance's.
    shared = build_chat_model(spec, temperature=1.0, seed=1, max_new_tokens=6)
    assert shared.invoke(prompt, seed=2).content == sample(2)
    greedy = build_chat_model(spec, max_new_tokens=6)
    assert greedy.invoke(prompt).content == greedy.invoke(prompt).content


@pytest.mark.slow
def test_fp16_refused_for_gemma_by_config(tiny_gemma_dir: Path) -> None:
    spec = f"hf:{tiny_gemma_dir}?device=cpu&dtype=float16"
    with pytest.raises(ModelSpecError) as info:
        build_chat_model(spec).invoke("hi")
    assert "float16 is refused" in str(info.value) and spec in str(info.value)


def test_load_error_names_the_spec(tmp_path: Path) -> None:
    spec = f"hf:{tmp_path / 'no-such-checkpoint'}?device=cpu"
    with pytest.raises(ModelLoadError) as info:
        build_chat_model(spec).invoke("hi")
    assert spec in str(info.value)


def test_missing_cuda_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path needs a machine without it")
    with pytest.raises(ModelSpecError, match="CUDA is not available"):
        build_chat_model("hf:/x?device=cuda").invoke("hi")
