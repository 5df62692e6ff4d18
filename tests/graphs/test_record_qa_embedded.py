"""One record question on the embedded model (SmolLM2-135M through agents.backends), end to end.

Only structure is asserted: a 135M model's medical content is not the point, but whatever it writes, the graph
must finish, answer, and cite nothing that was not fetched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.backends import build_chat_model
from agents.navigator import Navigator
from graphs.record_qa import ask_record, build_record_qa_graph
from tests.navigator.small_record import NOW, PATIENT, RecordingStore, small_record

pytestmark = pytest.mark.slow


async def test_one_question_on_the_embedded_model(model_cache_dir: Path) -> None:
    store = RecordingStore(small_record())
    model = build_chat_model("embedded", cache_dir=model_cache_dir)
    # Short caps keep each call to seconds on two CPU cores; json_schema makes the local model stop at the brace.
    navigator = Navigator(model, plan_tokens=96, answer_tokens=96, max_facts=12)
    result = await ask_record(build_record_qa_graph(navigator, store), PATIENT, "What is her latest HbA1c?", NOW)

    assert result.answer.strip()
    assert 1 <= result.model_calls <= 4
    assert result.model is not None and "embedded" in result.model
    assert result.input_tokens > 100 and result.output_tokens > 0
    fetched = {
        f"{kind}/{raw['id']}" for kind, params in store.searches() for raw in await store.inner.search(kind, params)
    }
    fetched |= {ref for ref in store.resolved() if await store.inner.resolve(ref) is not None}
    assert set(result.citations) <= fetched
    assert not set(result.dropped_citations) & fetched
