"""Test doubles for the simulation tests: a scripted chat model that records what it was sent, case-file writers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

AGENTCLINIC_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "agentclinic"


class ScriptedChatModel(BaseChatModel):
    """Replies from a script, in order; fails loudly when called more often than scripted.

    With ``report_usage=True`` it reports usage and timing the way the real backends do; without, like a bare fake.
    """

    replies: list[str]
    report_usage: bool = True
    seen: list[list[BaseMessage]] = []
    kwargs_seen: list[dict[str, Any]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted-test"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        if len(self.seen) >= len(self.replies):
            raise AssertionError(f"unexpected model call #{len(self.seen) + 1}: {messages[-1].content!r}")
        self.seen.append(list(messages))
        self.kwargs_seen.append(dict(kwargs))
        text = self.replies[len(self.seen) - 1]
        message = AIMessage(content=text)
        if self.report_usage:
            message = AIMessage(
                content=text,
                usage_metadata={"input_tokens": 100 + len(self.seen), "output_tokens": 7,
                                "total_tokens": 107 + len(self.seen)},
                response_metadata={"model": "scripted:test", "wall_seconds": 0.25},
            )
        return ChatResult(generations=[ChatGeneration(message=message)])


@pytest.fixture
def scripted() -> Callable[..., ScriptedChatModel]:
    def make(*replies: str, report_usage: bool = True) -> ScriptedChatModel:
        return ScriptedChatModel(replies=list(replies), report_usage=report_usage, seen=[], kwargs_seen=[])

    return make


def _medqa_record(**osce_overrides: Any) -> dict[str, Any]:
    """A small, valid MedQA OSCE record; keyword arguments replace (or, with None, remove) OSCE fields."""
    osce: dict[str, Any] = {
        "Objective_for_Doctor": "Assess and diagnose the patient presenting with joint pain.",
        "Patient_Actor": {
            "Demographics": "52-year-old man",
            "History": "Woke with a red, hot, swollen big toe after a night of heavy drinking.",
            "Symptoms": {"Primary_Symptom": "Painful big toe", "Secondary_Symptoms": ["Redness", "Swelling"]},
            "Past_Medical_History": "Hypertension treated with hydrochlorothiazide.",
            "Social_History": "Drinks 4 beers a night.",
            "Review_of_Systems": "No fever, no trauma.",
        },
        "Physical_Examination_Findings": {
            "Vital_Signs": {"Temperature": "37.4°C", "Blood_Pressure": "142/88 mmHg", "Heart_Rate": "88 bpm"},
            "Musculoskeletal_Examination": {"First_MTP_Joint": "Erythematous, warm, exquisitely tender."},
        },
        "Test_Results": {
            "Complete_Blood_Count": {"WBC": "11,200/µL", "Hemoglobin": "14.8 g/dL", "Platelets": "250,000/µL"},
            "Serum_Uric_Acid": "9.1 mg/dL",
            "Electrocardiogram": {"Findings": "Normal sinus rhythm."},
            "Imaging": {"Chest_X-ray": {"Findings": "Clear lungs."}, "MRI_Brain": {"Findings": "Normal."}},
            "Joint_Aspiration": {
                "Synovial_Fluid": "Needle-shaped negatively birefringent crystals; consistent with gout",
            },
            "Urine_Culture": "No growth",
        },
        "Correct_Diagnosis": "Gout",
    }
    for key, value in osce_overrides.items():
        if value is None:
            osce.pop(key, None)
        else:
            osce[key] = value
    return {"OSCE_Examination": osce}


def _nejm_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "image_url": "https://example.org/image.jpg",
        "question": "A 40-year-old woman ... What is the most likely diagnosis?",
        "patient_info": "For your role as a patient, you are a 40-year-old woman with an itchy rash on your shins.",
        "physical_exams": "Laboratory studies: - Glucose: 210 mg/dL Biopsy findings: - Skin biopsy: necrobiosis",
        "answers": [
            {"text": "Erythema nodosum", "correct": False},
            {"text": "Necrobiosis lipoidica", "correct": True},
            {"text": "Pretibial myxedema", "correct": False},
        ],
    }
    record.update(overrides)
    return record


def _write_lines(path: Path, lines: list[Any], *, newline: str = "\n", trailing: bool = True,
                bom: bool = False) -> Path:
    """Write records (dicts are JSON-encoded, strings written as they are) as a JSON-lines file."""
    text = newline.join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines)
    data = (text + (newline if trailing else "")).encode("utf-8")
    path.write_bytes(b"\xef\xbb\xbf" + data if bom else data)
    return path


# Builders are handed out as fixtures: test modules here are not a package, so they import nothing from each other.
@pytest.fixture
def medqa_record() -> Callable[..., dict[str, Any]]:
    return _medqa_record


@pytest.fixture
def nejm_record() -> Callable[..., dict[str, Any]]:
    return _nejm_record


@pytest.fixture
def write_lines() -> Callable[..., Path]:
    return _write_lines


@pytest.fixture
def gout_case(tmp_path: Path) -> Any:
    from simulations.cases import load_case

    return load_case(_write_lines(tmp_path / "gout.jsonl", [_medqa_record()]), 0)


@pytest.fixture
def agentclinic_file() -> Callable[[str], Path]:
    """The path of a shared AgentClinic file, or a skip saying where it was looked for."""

    def find(name: str) -> Path:
        path = AGENTCLINIC_DATA / name
        if not path.is_file():
            pytest.skip(f"shared AgentClinic data not present: {path} (see shared/data/agentclinic/SOURCE.md)")
        return path

    return find
