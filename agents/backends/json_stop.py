"""Where a JSON reply ends: local models have no constrained decoding, but they can stop once the object closes.

A caller that passes ``json_schema`` describes the format in its own prompt; the local backend then ends generation
at the ``}`` that closes the first top-level object, instead of letting a small model ramble on after it. Braces
inside JSON strings and inside an unfinished MedGemma thinking block do not count.
"""

from __future__ import annotations

__all__ = ["json_object_end"]

_THINK_OPEN = "<unused94>"
_THINK_CLOSE = "<unused95>"


def json_object_end(text: str) -> int | None:
    """The index just past the first complete top-level JSON object in ``text``, or None while it is open."""
    start = 0
    if _THINK_OPEN in text:
        close = text.find(_THINK_CLOSE)
        if close < 0:
            return None  # still thinking: braces in the reasoning are not the answer
        start = close + len(_THINK_CLOSE)
    depth = 0
    in_string = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"' and depth > 0:
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                return index + 1
    return None
