"""A corpus of real-looking doctor replies, good and bad, with the decision each must yield."""

from __future__ import annotations

import pytest

from agents.doctor import parse_decision
from agents.doctor.parsing import split_thinking

# (id, reply, expected action, expected text, expected differential as (diagnosis, probability) or None to skip)
GOOD = [
    (
        "bare",
        ('{"action": "ask", "text": "Do you smoke?", "differential": [{"diagnosis": "COPD", "probability": 0.6}], '
         '"rationale": "Smoking is the main risk factor."}'),
        "ask",
        "Do you smoke?",
        [("COPD", 0.6)],
    ),
    (
        "prose_around",
        ('Based on the history, I would like to examine further.\n{"action": "test", "text": "Chest X-ray", '
         '"differential": [{"diagnosis": "Pneumonia", "probability": 0.5}], "rationale": "Fever and cough."}\n'
         "Let me know the results."),
        "test",
        "Chest X-ray",
        [("Pneumonia", 0.5)],
    ),
    (
        "fenced",
        ('Here is my decision:\n```json\n{\n  "action": "diagnose",\n  "text": "Myasthenia gravis",\n'
         '  "differential": [\n    {"diagnosis": "Myasthenia gravis", "probability": 0.85},\n'
         '    {"diagnosis": "Lambert-Eaton syndrome", "probability": 0.1}\n  ],\n'
         '  "rationale": "Fatigable ptosis."\n}\n```'),
        "diagnose",
        "Myasthenia gravis",
        [("Myasthenia gravis", 0.85), ("Lambert-Eaton syndrome", 0.1)],
    ),
    (
        "trailing_commas",
        ('{"action": "ask", "text": "Any weight loss?", "differential": [{"diagnosis": "Hyperthyroidism", '
         '"probability": 0.4},],}'),
        "ask",
        "Any weight loss?",
        [("Hyperthyroidism", 0.4)],
    ),
    (
        "single_quotes",
        ("{'action': 'test', 'text': 'TSH', 'differential': [{'diagnosis': 'Graves disease', 'probability': 0.5}], "
         "'rationale': 'Tremor and weight loss.'}"),
        "test",
        "TSH",
        [("Graves disease", 0.5)],
    ),
    (
        "percentages_unsorted",
        ('{"action": "ask", "text": "Is the pain worse after meals?", "differential": ['
         '{"diagnosis": "Peptic ulcer", "probability": "20%"}, {"diagnosis": "Cholecystitis", "probability": 70}, '
         '{"diagnosis": "", "probability": 0.1}, {"diagnosis": "Pancreatitis", "probability": "10 %"}], '
         '"rationale": ""}'),
        "ask",
        "Is the pain worse after meals?",
        [("Cholecystitis", 0.7), ("Peptic ulcer", 0.2), ("Pancreatitis", 0.1)],
    ),
    (
        "thinking_block",
        ('<unused94>thought\nThe patient has ptosis. Maybe {"action": "ask"} first? No, test.<unused95>'
         '{"action": "test", "text": "Acetylcholine receptor antibodies", "differential": [], "rationale": "Ptosis."}'),
        "test",
        "Acetylcholine receptor antibodies",
        [],
    ),
    (
        "nested_decision",
        ('{"decision": {"action": "ask_patient", "question": "How long has this been going on?"}, '
         '"differential_diagnosis": [{"name": "Migraine", "likelihood": 0.5}]}'),
        "ask",
        "How long has this been going on?",
        [("Migraine", 0.5)],
    ),
    (
        "synonym_order_test",
        '{"action": "order_test", "test": "Complete blood count", "reasoning": "Check for anaemia."}',
        "test",
        "Complete blood count",
        [],
    ),
    (
        "synonym_request_test",
        '{"action": "REQUEST TEST", "message": "Urinalysis"}',
        "test",
        "Urinalysis",
        [],
    ),
    (
        "synonym_final_diagnosis",
        '{"action": "final_diagnosis", "diagnosis": "Progressive multifocal leukoencephalopathy"}',
        "diagnose",
        "Progressive multifocal leukoencephalopathy",
        [],
    ),
    (
        "synonym_question_action",
        '{"action": "question", "text": "Do you have a fever?"}',
        "ask",
        "Do you have a fever?",
        [],
    ),
    (
        "action_inferred_from_key",
        '{"question": "Have you travelled recently?", "differential": [{"diagnosis": "Malaria", "probability": 0.3}]}',
        "ask",
        "Have you travelled recently?",
        [("Malaria", 0.3)],
    ),
    (
        "diagnosis_only_in_differential",
        '{"action": "diagnose", "text": "", "differential": [{"diagnosis": "Sarcoidosis", "probability": 0.6}]}',
        "diagnose",
        "Sarcoidosis",
        [("Sarcoidosis", 0.6)],
    ),
    (
        "echoed_example_then_answer",
        ('Example: {"action": "ask", "text": "When did the symptoms start?"}\nMy reply: '
         '{"action": "test", "text": "Lumbar puncture", "differential": [], "rationale": "Meningism."}'),
        "test",
        "Lumbar puncture",
        [],
    ),
    (
        "truncated_by_token_limit",
        ('{"action": "ask", "text": "Do you have night sweats?", "differential": [{"diagnosis": "Tuberculosis", '
         '"probability": 0.4}, {"diagnosis": "Lymph'),
        "ask",
        "Do you have night sweats?",
        [("Tuberculosis", 0.4)],
    ),
    (
        "json_followed_by_loop",
        '{"action": "ask", "text": "Any chest pain?"}' + " }" * 40,
        "ask",
        "Any chest pain?",
        [],
    ),
    (
        "agentclinic_request_test",
        "I would like to check her thyroid function. REQUEST TEST: Thyroid function tests.",
        "test",
        "Thyroid function tests",
        [],
    ),
    (
        "agentclinic_diagnosis_ready",
        "Given the findings, DIAGNOSIS READY: **Myasthenia gravis**",
        "diagnose",
        "Myasthenia gravis",
        [],
    ),
    (
        "plain_question",
        "Thank you for coming in.\nDoctor: How long have you had the double vision?",
        "ask",
        "How long have you had the double vision?",
        [],
    ),
    (
        "diagnosis_in_prose",
        "Based on the symptoms, the most likely diagnosis is Myasthenia gravis. It is autoimmune.",
        "diagnose",
        "Myasthenia gravis",
        [],
    ),
    (
        "stray_brace_before_json",
        'I think {maybe this\n{"action": "ask", "text": "Any fever?"}',
        "ask",
        "Any fever?",
        [],
    ),
    (
        "question_skips_roleplayed_patient",
        "Patient: Should I be worried?\nCan you describe the pain?",
        "ask",
        "Can you describe the pain?",
        [],
    ),
]

BAD = [
    ("empty", "", "empty reply"),
    ("whitespace", "   \n\t ", "empty reply"),
    ("punctuation", "?!... --- ???", "punctuation"),
    ("repeated_words", "pain pain pain pain pain pain pain pain pain pain", "repetitive"),
    ("repeated_chunk", "ababababababababababab", "repetitive"),
    ("refusal", "I'm sorry, but I can't provide medical advice. Would you like to see a doctor?", "refusal"),
    ("json_without_action", '{"patient": "45-year-old man", "notes": "chest pain"}', "action"),
    ("json_without_text", '{"action": "ask", "text": "", "differential": []}', "text"),
    ("json_differential_only", '{"differential": [{"diagnosis": "Gout", "probability": 0.5}]}', "action"),
    ("only_thinking", "<unused94>thought\nI am still thinking about the case and", "empty reply"),
    ("statement_without_question", "The patient probably has something serious.", "no JSON"),
    ("hedged_diagnosis", "The diagnosis is unclear at this point. More information is needed.", "no JSON"),
    (
        "long_prose_after_diagnosis_word",
        "The diagnosis is " + "one of many things we need to consider here " * 2,
        "no JSON",
    ),
    ("repetitive_json_text", '{"action": "ask", "text": "pain pain pain pain pain pain pain"}', "repetitive"),
]


@pytest.mark.parametrize(("reply", "action", "text", "differential"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_good_replies_parse_to_the_expected_decision(
    reply: str, action: str, text: str, differential: list[tuple[str, float]]
) -> None:
    result = parse_decision(reply)
    assert result.ok, result.reason
    assert result.decision is not None
    assert (result.decision.action, result.decision.text) == (action, text)
    got = [(e.diagnosis, pytest.approx(e.probability)) for e in result.decision.differential]
    assert got == differential


@pytest.mark.parametrize(("reply", "reason_part"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_replies_give_none_with_a_reason(reply: str, reason_part: str) -> None:
    result = parse_decision(reply)
    assert result.decision is None
    assert not result.ok
    assert reason_part.lower() in result.reason.lower()


def test_parse_method_names_the_route_taken() -> None:
    assert parse_decision('{"action": "ask", "text": "Any fever?"}').method == "json"
    assert parse_decision('{"action": "ask", "text": "Any fever?", "rationale": "cut').method == "json_salvage"
    assert parse_decision("REQUEST TEST: ECG").method == "tag"
    assert parse_decision("Any fever?").method == "question"
    assert parse_decision("Final diagnosis: Gout").method == "prose_diagnosis"


def test_question_wins_over_a_diagnosis_mentioned_in_prose() -> None:
    result = parse_decision("The diagnosis is unclear so far.\nDo you have joint pain?")
    assert result.decision is not None and result.decision.action == "ask"


def test_json_wins_over_tags_and_questions() -> None:
    reply = 'Do you smoke? DIAGNOSIS READY: Asthma\n{"action": "test", "text": "Spirometry"}'
    result = parse_decision(reply)
    assert result.decision is not None and (result.decision.action, result.decision.text) == ("test", "Spirometry")


def test_diagnosis_tag_wins_over_test_tag() -> None:
    result = parse_decision("REQUEST TEST: ECG\nDIAGNOSIS READY: Pericarditis")
    assert result.decision is not None and (result.decision.action, result.decision.text) == (
        "diagnose",
        "Pericarditis",
    )


def test_never_raises_on_odd_input() -> None:
    for reply in ["{", "}", "{{{{", '{"action": ', "{'a': [1, 2", "\x00\x01", "{" * 5000, 12345]:
        result = parse_decision(reply)  # type: ignore[arg-type]
        assert result.decision is None


def test_split_thinking_variants() -> None:
    assert split_thinking("<unused94>thought\nhmm<unused95>answer") == ("answer", "hmm")
    assert split_thinking("reasoning without opener<unused95> answer") == ("answer", "reasoning without opener")
    assert split_thinking("<unused94>thought\ncut off") == ("", "cut off")
    assert split_thinking("plain") == ("plain", None)
