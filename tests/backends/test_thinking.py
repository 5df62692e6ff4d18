from __future__ import annotations

import pytest

from agents.backends import split_thinking

CORPUS = [
    # (raw completion, answer, thinking)
    ("Order an ECG.", "Order an ECG.", None),
    ("", "", None),
    (
        "<unused94>thought\nChest pain, diaphoresis: rule out ACS.<unused95>Order an ECG.",
        "Order an ECG.",
        "Chest pain, diaphoresis: rule out ACS.",
    ),
    ("<unused94>thought\nStep 1.\nStep 2.<unused95>\n\nFinal: troponin.\n", "Final: troponin.", "Step 1.\nStep 2."),
    # generation ran out while thinking: everything is thinking, no answer
    ("<unused94>thought\nThe differential includes", "", "The differential includes"),
    # opener dropped by a server that skips special tokens, closer kept
    ("thought\nweighing options<unused95>Aspirin.", "Aspirin.", "weighing options"),
    # no label
    ("<unused94>just reasoning<unused95>done", "done", "just reasoning"),
    # text before the block is kept as answer
    ("Preface. <unused94>thought\nhmm<unused95> Answer.", "Preface.  Answer.", "hmm"),
    # two blocks
    ("<unused94>thought\nA<unused95>x <unused94>thought\nB<unused95>y", "x y", "A\n\nB"),
    # empty block is no thinking
    ("<unused94><unused95>Answer", "Answer", None),
    # the word "thought" inside reasoning is kept, only the leading label goes
    ("<unused94>thought\nMy first thought was sepsis.<unused95>Cultures.", "Cultures.", "My first thought was sepsis."),
    # the word "thought" in a plain answer is not touched
    ("thought-provoking case", "thought-provoking case", None),
    # a second opener inside an unclosed block
    ("<unused94>thought\na<unused94>b", "", "ab"),
]


@pytest.mark.parametrize(("raw", "answer", "thinking"), CORPUS)
def test_split_thinking(raw: str, answer: str, thinking: str | None) -> None:
    assert split_thinking(raw) == (answer, thinking)


def test_answer_never_contains_markers() -> None:
    for raw, _, _ in CORPUS:
        answer, _ = split_thinking(raw)
        assert "<unused94>" not in answer and "<unused95>" not in answer
