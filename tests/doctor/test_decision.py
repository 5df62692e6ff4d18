"""DoctorDecision normalisation and the schema handed to constrained decoding."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from agents.doctor import DifferentialEntry, DoctorDecision, decision_json_schema
from agents.doctor.decision import MAX_DIFFERENTIAL, normalise_probability


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0.7, 0.7),
        (70, 0.7),
        ("70%", 0.7),
        ("0.7", 0.7),
        (" 35 % ", 0.35),
        (1, 1.0),
        (100, 1.0),
        (250, 1.0),
        (-3, 0.0),
        ("likely", 0.0),
        (None, 0.0),
        (True, 0.0),
        (float("nan"), 0.0),
        ("5%", 0.05),
    ],
)
def test_probability_normalisation(raw: object, expected: float) -> None:
    assert normalise_probability(raw) == pytest.approx(expected)


def test_differential_is_cleaned_sorted_deduplicated_and_capped() -> None:
    decision = DoctorDecision(
        action="ask",
        text="  Any fever?  ",
        differential=[
            {"diagnosis": "A", "probability": 10},
            {"diagnosis": " ", "probability": 0.9},
            {"diagnosis": "B", "probability": "60%"},
            {"diagnosis": "a", "probability": 0.99},  # duplicate of A (case-insensitive), first one kept
            "C",
            {"diagnosis": "D", "probability": 0.3},
            {"diagnosis": "E", "probability": 0.2},
            {"diagnosis": "F", "probability": 0.15},
            {"probability": 0.5},
        ],
    )
    assert decision.text == "Any fever?"
    assert [(e.diagnosis, e.probability) for e in decision.differential] == [
        ("B", 0.6),
        ("D", 0.3),
        ("E", 0.2),
        ("F", 0.15),
        ("A", 0.1),
    ]
    assert len(decision.differential) == MAX_DIFFERENTIAL


def test_differential_as_mapping() -> None:
    decision = DoctorDecision(action="diagnose", text="Gout", differential={"Gout": "80%", "Pseudogout": 0.15})
    assert decision.differential == [
        DifferentialEntry(diagnosis="Gout", probability=0.8),
        DifferentialEntry(diagnosis="Pseudogout", probability=0.15),
    ]


@pytest.mark.parametrize("bad", [{"action": "wait", "text": "x"}, {"action": "ask", "text": ""}, {"action": "ask"}])
def test_invalid_decisions_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DoctorDecision.model_validate(bad)


def test_json_schema_is_self_contained_and_strict() -> None:
    schema = decision_json_schema()
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in schema
    assert list(schema["properties"]) == ["action", "text", "differential", "rationale"]
    assert schema["required"] == ["action", "text", "differential", "rationale"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["action"]["enum"] == ["ask", "test", "diagnose"]
    differential = schema["properties"]["differential"]
    assert differential["maxItems"] == MAX_DIFFERENTIAL
    assert differential["items"]["required"] == ["diagnosis", "probability"]
    assert all("description" in p for p in schema["properties"].values())
    # Fresh each call: a caller mutating its copy cannot change the next one.
    schema["properties"].clear()
    assert decision_json_schema()["properties"]


def test_a_decision_round_trips_through_its_own_json() -> None:
    decision = DoctorDecision(action="test", text="ECG", differential=[{"diagnosis": "MI", "probability": 0.4}])
    assert DoctorDecision.model_validate_json(decision.model_dump_json()) == decision
