"""Finding JSON objects in model text: balanced-brace scanning, cheap repairs, and salvage of truncated objects.

Pure functions over strings; none raises on bad input. Shared by the roles that read JSON from a model: the
doctor's decisions (``agents.doctor.parsing``) and the navigator's plans and answers (``agents.navigator``).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

# A truncated reply has one unclosed object, perhaps a second in its last differential item; more is noise.
_MAX_UNCLOSED = 8


def scan_objects(text: str) -> Iterator[tuple[int, int, bool]]:
    """Yield (start, end, complete) for each outermost ``{...}``; an unclosed one runs to the end of the text.

    String-aware for double quotes, so braces inside values do not count. After an unclosed object the scan
    resumes just past its brace, so complete objects nested in a truncated one are still found; each restart
    rescans to the end, so they are capped at ``_MAX_UNCLOSED`` to keep a reply of ``{{{{...`` linear.
    """
    unclosed = 0
    i = text.find("{")
    while i != -1 and unclosed < _MAX_UNCLOSED:
        depth, in_string, escaped, end = 0, False, False, -1
        for j in range(i, len(text)):
            ch = text[j]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    end = j + 1
                    break
        if end == -1:
            unclosed += 1
            yield i, len(text), False
            i = text.find("{", i + 1)
        else:
            yield i, end, True
            i = text.find("{", end)


_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
_JSON_LITERALS = {"true": "True", "false": "False", "null": "None"}


def load_object(snippet: str) -> dict[str, Any] | None:
    """json.loads, then the cheap repairs: smart quotes, trailing commas, single quotes / Python literals."""
    attempts = (
        lambda s: json.loads(s, strict=False),
        lambda s: json.loads(_TRAILING_COMMA.sub(r"\1", s.translate(_SMART_QUOTES)), strict=False),
        lambda s: ast.literal_eval(
            re.sub(r"\b(true|false|null)\b", lambda m: _JSON_LITERALS[m.group(1)], s.translate(_SMART_QUOTES))
        ),
    )
    for attempt in attempts:
        try:
            value = attempt(snippet)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


_STRING_PAIR = re.compile(r'"([A-Za-z_][\w \-]*)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def salvage_object(snippet: str) -> dict[str, Any]:
    """The complete ``"key": "value"`` pairs and complete inner objects of a truncated JSON object."""
    body = snippet[1:]
    inner: list[dict[str, Any]] = []
    spans: list[tuple[int, int]] = []
    for start, end, complete in scan_objects(body):
        if complete:
            loaded = load_object(body[start:end])
            if loaded is not None:
                inner.append(loaded)
            spans.append((start, end))
    for start, end in reversed(spans):
        body = body[:start] + body[end:]
    salvaged: dict[str, Any] = {}
    for key, raw in _STRING_PAIR.findall(body):
        try:
            value = json.loads(f'"{raw}"', strict=False)
        except ValueError:
            continue
        salvaged.setdefault(key, value)
    if inner:
        salvaged.setdefault("differential", inner)
    return salvaged


def close_truncated(snippet: str, attempts: int = 24) -> Any:
    """A JSON value cut off by the token limit, read up to its last complete element: cut at a comma (from the
    end, at most ``attempts`` of them) and close whatever is still open. None when no cut parses."""
    stack: list[str] = []
    cuts: list[tuple[int, str]] = []  # (index of a comma outside strings, the closers needed there)
    in_string = escaped = False
    for index, char in enumerate(snippet):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            stack.append("]" if char == "[" else "}")
        elif char in "]}" and stack:
            stack.pop()
        elif char == ",":
            cuts.append((index, "".join(reversed(stack))))
    for index, closers in reversed(cuts[-attempts:]):
        loaded = load_object('{"v": ' + snippet[:index] + closers + "}")
        if loaded is not None:
            return loaded["v"]
    return None
