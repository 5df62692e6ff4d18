"""One consultation end to end through the real graph, actors, judge and transcript, on fake chat models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from graphs.checkpointers import open_checkpointer
from simulations.cases import get_demo_case
from simulations.session import ConsultationSetup, run_consultation, saved_origin
from simulations.transcript import write_transcript


def _decision(action: str, text: str) -> str:
    return json.dumps({"action": action, "text": text, "differential": [
        {"diagnosis": "Acute inferior myocardial infarction", "probability": 0.7}], "rationale": "r"})


def _setup(doctor_replies: list[str], max_turns: int = 6) -> ConsultationSetup:
    case = get_demo_case("demo:chest-pain")
    patient = FakeListChatModel(responses=["It started while I was shovelling snow."])
    judge = FakeListChatModel(responses=["Yes"])
    return ConsultationSetup(
        case=case,
        models={"reasoning": FakeListChatModel(responses=doctor_replies), "patient": patient,
                "measurement": patient, "judge": judge},
        specs={"reasoning": "fake:doctor", "patient": "fake:patient", "measurement": "fake:patient",
               "judge": "fake:judge"},
        max_turns=max_turns,
    )


async def test_simulated_consultation_produces_a_full_transcript(tmp_path: Path) -> None:
    setup = _setup([_decision("ask", "When did it start?"), _decision("test", "ECG"),
                    _decision("diagnose", "Acute inferior myocardial infarction")])
    seen: list[str] = []
    async with open_checkpointer(None) as saver:
        transcript = await run_consultation(setup, checkpointer=saver, thread_id="t-1",
                                            on_entry=lambda e: seen.append(e["role"]))
    assert seen == ["doctor", "patient", "doctor", "measurement", "doctor"]
    assert transcript["case"]["id"] == "demo:chest-pain"
    assert transcript["environment"] == "simulated/strict"
    assert transcript["models"]["reasoning"] == "fake:doctor"
    assert transcript["outcome"]["final_diagnosis"] == "Acute inferior myocardial infarction"
    assert transcript["outcome"]["ended_by"] == "doctor"
    assert transcript["verdict"]["correct"] is True
    assert transcript["totals"]["turns"] == 3 and transcript["totals"]["tests"] == 1
    # The ECG is listed in the demo case, so the result comes from the case, not from a model.
    ecg = transcript["dialogue"][3]["text"]
    assert ecg.startswith("RESULTS:") and "not available" not in ecg
    json_path, md_path = write_transcript(tmp_path / "out", transcript)
    assert json.loads(json_path.read_text())["thread_id"] == "t-1"
    page = md_path.read_text()
    assert "When did it start?" in page and "**Verdict:** correct" in page


async def test_a_consultation_cut_off_mid_run_resumes_without_repeating_a_turn(tmp_path: Path) -> None:
    db = tmp_path / "ck.sqlite"
    replies = [_decision("ask", f"Question {i}?") for i in range(1, 4)] + [_decision("diagnose", "Acute MI")]

    class Crash(Exception):
        pass

    def crash_after_three(entry: dict) -> None:
        crash_after_three.count += 1  # type: ignore[attr-defined]
        if crash_after_three.count == 3:  # type: ignore[attr-defined]
            raise Crash

    crash_after_three.count = 0  # type: ignore[attr-defined]
    async with open_checkpointer(db) as saver:
        with pytest.raises(Crash):
            await run_consultation(_setup(replies), checkpointer=saver, thread_id="t-2", on_entry=crash_after_three)
    # A new process would rebuild everything; the doctor's script continues where the checkpoint stopped.
    async with open_checkpointer(db) as saver:
        origin = await saved_origin(saver, "t-2")
        assert origin is not None and origin["case_ref"] == "demo:chest-pain" and origin["max_turns"] == 6
        assert await saved_origin(saver, "no-such-thread") is None
        transcript = await run_consultation(_setup(replies[2:]), checkpointer=saver, thread_id="t-2", resume=True)
    doctor_turns = [e for e in transcript["dialogue"] if e["role"] == "doctor"]
    assert [e["turn"] for e in doctor_turns] == [1, 2, 3, 4]
    assert [e["text"] for e in doctor_turns] == ["Question 1?", "Question 2?", "Question 3?", "Acute MI"]
    assert transcript["outcome"]["final_diagnosis"] == "Acute MI"
