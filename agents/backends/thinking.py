"""Separate MedGemma's thinking block from its answer.

MedGemma 27B (and sometimes MedGemma 1.5 4B, unprompted) writes ``<unused94>thought\\n...<unused95>answer``.
The reasoning must never reach a parser or a patient, but it is worth keeping in the trace, so backends put the
answer in ``AIMessage.content`` and the reasoning in ``response_metadata["thinking"]``.
"""

from __future__ import annotations

import re

__all__ = ["THINKING_CLOSE", "THINKING_OPEN", "split_thinking"]

THINKING_OPEN = "<unused94>"
THINKING_CLOSE = "<unused95>"

# The model names its block with the word "thought" on the first line; it is a label, not reasoning.
_THOUGHT_LABEL = re.compile(r"\A\s*thought\s*?(?:\n|\Z)", re.IGNORECASE)
_BLOCK = re.compile(re.escape(THINKING_OPEN) + r"(.*?)" + re.escape(THINKING_CLOSE), re.DOTALL)


def _clean_thought(raw: str) -> str:
    return _THOUGHT_LABEL.sub("", raw, count=1).strip()


def split_thinking(text: str) -> tuple[str, str | None]:
    """Return ``(answer, thinking)`` for a raw completion; ``thinking`` is None when there was no block.

    Handles closed blocks (several are joined), an unclosed ``<unused94>`` (generation ran out while still
    thinking: everything after it is thinking and the answer is empty), a closing tag whose opener was dropped
    by a server that skips special tokens (everything before it is thinking), and the leading ``thought`` label.
    """
    thoughts: list[str] = []

    def _collect(match: re.Match[str]) -> str:
        thoughts.append(_clean_thought(match.group(1)))
        return ""

    rest = _BLOCK.sub(_collect, text)

    if THINKING_OPEN in rest:
        # Unclosed block: the model never finished thinking, so nothing after the tag is an answer.
        before, _, after = rest.partition(THINKING_OPEN)
        thoughts.append(_clean_thought(after.replace(THINKING_OPEN, "")))
        rest = before
    elif THINKING_CLOSE in rest:
        # Opener lost (decoded with skip_special_tokens): the text before the last closer is reasoning.
        before, _, after = rest.rpartition(THINKING_CLOSE)
        thoughts.append(_clean_thought(before.replace(THINKING_CLOSE, "")))
        rest = after

    if not thoughts:
        return text.strip(), None
    thinking = "\n\n".join(t for t in thoughts if t)
    return rest.strip(), thinking or None
