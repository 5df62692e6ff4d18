"""One real doctor turn on the embedded model (SmolLM2-135M through agents.backends), end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.backends import build_chat_model
from agents.doctor import Doctor, DoctorDecision, Exchange

pytestmark = pytest.mark.slow

OBJECTIVE = (
    "Assess and diagnose the patient presenting with double vision, difficulty climbing stairs, "
    "and upper limb weakness."
)


async def test_one_turn_on_the_embedded_model(model_cache_dir: Path) -> None:
    model = build_chat_model("embedded", cache_dir=model_cache_dir)
    history = [Exchange('{"action": "ask", "text": "When did it start?"}', "About a month ago.", "patient")]
    # A short cap keeps a turn to seconds on two CPU cores; the schema hint makes the local model stop at the
    # closing brace, as in the product.
    turn = await Doctor(model, max_new_tokens=64).decide(OBJECTIVE, history, 2, 8)

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
