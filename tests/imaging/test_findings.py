"""ImageFindings and parse_findings: tolerant fields, JSON anywhere, placeholders refused, prose kept; rendering."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from agents.imaging import ImageFindings, findings_json_schema, parse_findings, render_findings


def test_json_inside_prose_with_a_percentage_and_string_observations() -> None:
    reply = (
        "Here is my read:\n```json\n"
        '{"observations": "- Right lower zone opacity\\n- Blunted right costophrenic angle", '
        '"impression": "Right lower lobe pneumonia with a small effusion.", "confidence": "70%", '
        '"limitations": "No lateral view"}\n```\nLet me know if you need more.'
    )
    parsed = parse_findings(reply)
    assert parsed.method == "json" and parsed.reason == "parsed JSON object"
    assert parsed.findings == ImageFindings(
        observations=["Right lower zone opacity", "Blunted right costophrenic angle"],
        impression="Right lower lobe pneumonia with a small effusion.",
        confidence=0.7,
        limitations=["No lateral view"],
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0.7, 0.7),
        ("70%", 0.7),
        (70, 0.7),
        ("0.35", 0.35),
        ("high", 0.8),
        (None, 0.0),
        ("unsure", 0.0),
        (True, 0.0),
        (250, 1.0),
    ],
)
def test_confidence_is_read_tolerantly(raw: object, expected: float) -> None:
    assert ImageFindings(impression="Pneumonia", confidence=raw).confidence == pytest.approx(expected)


def test_synonym_keys_nested_objects_and_mapping_observations() -> None:
    reply = json.dumps(
        {"read": {"Findings": {"lungs": "clear", "heart": "enlarged"}, "Conclusion": "Cardiomegaly", "certainty": 0.6}}
    )
    parsed = parse_findings(reply)
    assert parsed.findings is not None
    assert parsed.findings.observations == ["lungs: clear", "heart: enlarged"]
    assert (parsed.findings.impression, parsed.findings.confidence) == ("Cardiomegaly", 0.6)


def test_items_drop_empties_placeholders_and_repeats() -> None:
    findings = ImageFindings(
        observations=["Opacity", "opacity.", "", "<visible finding>", "None", {"finding": "effusion", "side": "left"}],
        impression="Pneumonia",
        limitations=["N/A"],
    )
    assert findings.observations == ["Opacity", "effusion, left"]
    assert findings.limitations == []


def test_placeholder_copied_from_the_prompt_is_refused() -> None:
    copied = (
        '{"observations": ["<visible finding>", "<visible finding>"], '
        '"impression": "<most likely interpretation, one sentence>", "confidence": 0.5, '
        '"limitations": ["<what you cannot assess>"]}'
    )
    parsed = parse_findings(copied)
    assert parsed.findings is None and "placeholder" in parsed.reason
    with pytest.raises(ValidationError):
        ImageFindings(impression="<most likely interpretation>")


def test_the_answer_after_an_echoed_example_wins() -> None:
    echoed = '{"observations": ["<visible finding>"], "impression": "<most likely interpretation>"}'
    answer = '{"observations": ["Vesicles"], "impression": "Herpes zoster", "confidence": 0.8}'
    parsed = parse_findings(f"{echoed}\n{answer}")
    assert parsed.findings is not None and parsed.findings.impression == "Herpes zoster"


def test_impression_is_required_and_not_empty() -> None:
    assert parse_findings('{"observations": ["Opacity"], "confidence": 0.4}').reason == "JSON without an impression"
    assert parse_findings('{"impression": "   "}').findings is None
    with pytest.raises(ValidationError):
        ImageFindings(impression="")


def test_plain_text_is_kept_as_the_impression_with_confidence_zero() -> None:
    parsed = parse_findings("The photograph shows a well-demarcated erythematous plaque with silvery scale.")
    assert (parsed.method, parsed.reason) == ("prose", "prose")
    assert parsed.findings is not None and parsed.findings.confidence == 0.0
    assert parsed.findings.impression.startswith("The photograph shows a well-demarcated")
    assert parsed.findings.observations == []


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "empty reply"),
        ("!!! ??? ...", "no words in reply (punctuation only)"),
        ("I'm sorry, I cannot interpret medical images.", "refusal"),
        ("no no no no no no no no no no", "repetitive reply"),
        ("Pneumonia.", "reply too short to be a read"),
        ('{"observations": ["a"', "truncated JSON: JSON without an impression"),
    ],
)
def test_unusable_replies_give_a_reason(reply: str, reason: str) -> None:
    parsed = parse_findings(reply)
    assert (parsed.findings, parsed.reason) == (None, reason)


def test_thinking_is_stripped_and_truncated_json_is_salvaged() -> None:
    reply = '<unused94>thought\n{"impression": "wrong"}<unused95>{"impression": "Psoriasis", "observations": ["Plaque", "Sca'
    parsed = parse_findings(reply)
    assert parsed.method == "json_salvage"
    assert parsed.findings is not None
    assert (parsed.findings.impression, parsed.findings.observations) == ("Psoriasis", ["Plaque"])


def test_render_findings_is_one_compact_paragraph() -> None:
    findings = ImageFindings(
        observations=["Right lower zone opacity.", "Small effusion"],
        impression="Pneumonia.",
        confidence=0.6,
        limitations=["No lateral view", "No prior film"],
    )
    assert render_findings(findings) == (
        "Observations: Right lower zone opacity; Small effusion. Impression: Pneumonia (confidence 0.6). "
        "Cannot assess: No lateral view; No prior film."
    )
    assert render_findings(ImageFindings(impression="Normal chest", confidence=1)) == (
        "Impression: Normal chest (confidence 1)."
    )


def test_json_schema_is_self_contained_and_strict() -> None:
    schema = findings_json_schema()
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)
    assert schema["required"] == ["observations", "impression", "confidence", "limitations"]
    assert schema["additionalProperties"] is False
    confidence = schema["properties"]["confidence"]
    assert (confidence["type"], confidence["minimum"], confidence["maximum"]) == ("number", 0.0, 1.0)
    assert schema["properties"]["impression"]["minLength"] == 1
    schema["required"].clear()  # a fresh copy each time
    assert findings_json_schema()["required"]
