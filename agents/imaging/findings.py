"""Structured findings of one image read, the tolerant parser that gets them out of a reply, and their rendering.

MedGemma 4B drifts out of any format, so the reply is read the way the doctor's replies are: a JSON object anywhere
in the text (the last usable one, outer before nested), forgiving synonym keys, percentages and a string where a
list belongs; then a JSON object cut off by the token limit; and when there is no JSON at all, the prose itself
becomes the impression with confidence 0 (method ``prose``) rather than being thrown away. A slot copied from the
prompt (``<visible finding>``) is never a finding. Everything here is a pure function; nothing raises on bad input.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agents.backends import split_thinking
from agents.doctor.decision import is_placeholder, normalise_probability
from agents.json_objects import close_truncated, load_object, salvage_object, scan_objects

__all__ = [
    "FindingsParse",
    "ImageFindings",
    "ParseMethod",
    "findings_json_schema",
    "parse_findings",
    "render_findings",
]

ParseMethod = Literal["json", "json_salvage", "prose"]

# A read longer than this says nothing more that the doctor can use; small models pad lists.
MAX_ITEMS = 12
MAX_ITEM_CHARS = 300
MAX_IMPRESSION_CHARS = 800
# Replies longer than this are runaway generations: only their start is worth reading.
_MAX_SCAN_CHARS = 20_000

# Items that say "nothing here" rather than naming a finding or a limitation.
_EMPTY_ITEMS = {"", "none", "n/a", "na", "nil", "null", "nothing", "-", "...", "not applicable"}
_BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\d+[.)])\s*")
# Words some models write instead of a number; the values sit mid-band so that they never look precise.
_CONFIDENCE_WORDS = (
    (re.compile(r"\bvery\s+high\b", re.IGNORECASE), 0.9),
    (re.compile(r"\bvery\s+low\b", re.IGNORECASE), 0.1),
    (re.compile(r"\bhigh\b", re.IGNORECASE), 0.8),
    (re.compile(r"\b(?:moderate|medium|intermediate)\b", re.IGNORECASE), 0.5),
    (re.compile(r"\blow\b", re.IGNORECASE), 0.2),
)


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a sentence or word boundary, marked with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = max(head.rfind(". "), head.rfind("; "))
    if cut < limit // 2:
        cut = head.rfind(" ")
    return head[: cut if cut > 0 else limit].rstrip(" .;,") + " ..."


def _item_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, bool) or item is None:
        return ""
    if isinstance(item, (int, float)):
        return str(item)
    if isinstance(item, Mapping):
        # {"finding": "opacity", "location": "right lower zone"}: the values in order are the finding.
        return ", ".join(_item_text(v) for v in item.values() if _item_text(v).strip())
    if isinstance(item, (list, tuple)):
        return ", ".join(_item_text(v) for v in item if _item_text(v).strip())
    return ""


def coerce_items(value: Any) -> list[str]:
    """A list of short, distinct, non-placeholder strings from a string, list or mapping in any common shape.

    A string is split into its lines (bullets removed); a mapping ``{"lungs": "clear"}`` gives ``"lungs: clear"``.
    """
    if value is None:
        return []
    if isinstance(value, str):
        raw: list[Any] = [_BULLET.sub("", line) for line in value.splitlines()]
    elif isinstance(value, Mapping):
        raw = [f"{k}: {_item_text(v)}" if _item_text(v).strip() else str(k) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        raw = list(value)
    else:
        raw = [value]
    items: list[str] = []
    seen: set[str] = set()
    for item in raw:
        text = _clip(_item_text(item).strip(), MAX_ITEM_CHARS)
        key = text.casefold().strip(" .")
        if key in _EMPTY_ITEMS or is_placeholder(text) or key in seen:
            continue
        seen.add(key)
        items.append(text)
    return items[:MAX_ITEMS]


def coerce_confidence(value: Any) -> float:
    """0.7, 70, "70%", "0.7" or "high" as a number in [0, 1]; anything unreadable is 0.0 (not stated)."""
    if isinstance(value, str) and not re.search(r"\d", value):
        for pattern, number in _CONFIDENCE_WORDS:
            if pattern.search(value):
                return number
        return 0.0
    return normalise_probability(value)


class ImageFindings(BaseModel):
    """What an image read found: visible observations, one impression, a confidence, and what it cannot assess."""

    model_config = ConfigDict(frozen=True)

    observations: list[str] = Field(
        default_factory=list, description="Findings visible in the image, one short phrase each."
    )
    impression: str = Field(min_length=1, description="The most likely interpretation of the image, in one sentence.")
    confidence: float = Field(
        default=0.0, ge=0.0, le=1.0, description="How sure the reader is of the impression, from 0 to 1."
    )
    limitations: list[str] = Field(default_factory=list, description="What this image does not let the reader assess.")

    @field_validator("observations", "limitations", mode="before")
    @classmethod
    def _items(cls, value: Any) -> list[str]:
        return coerce_items(value)

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence(cls, value: Any) -> float:
        return coerce_confidence(value)

    @field_validator("impression", mode="before")
    @classmethod
    def _impression(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            value = "; ".join(coerce_items(value))
        if not isinstance(value, str):
            return value
        text = _clip(value, MAX_IMPRESSION_CHARS)
        if is_placeholder(text):
            raise ValueError("the impression is a placeholder copied from the prompt")
        return text


@functools.cache
def _findings_json_schema() -> dict[str, Any]:
    schema = ImageFindings.model_json_schema()
    for prop in schema["properties"].values():
        prop.pop("default", None)
    # Every key required, no others: a constrained engine then writes all four, observations first.
    schema["required"] = list(schema["properties"])
    schema["additionalProperties"] = False
    return schema


def findings_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``ImageFindings`` for constrained decoding: self-contained, every key required, nothing
    else allowed (a fresh copy: callers may edit it)."""
    return copy.deepcopy(_findings_json_schema())


# --- reading a reply ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FindingsParse:
    """Parsed findings, or None with a short reason why the reply could not be used."""

    findings: ImageFindings | None
    reason: str
    method: ParseMethod | None = None

    @property
    def ok(self) -> bool:
        return self.findings is not None


_KEYS: dict[str, tuple[str, ...]] = {
    "observations": ("observations", "observation", "findings", "finding", "features", "description", "key_findings"),
    "impression": (
        "impression",
        "conclusion",
        "summary",
        "interpretation",
        "assessment",
        "diagnosis",
        "overall_impression",
        "most_likely_diagnosis",
    ),
    "confidence": ("confidence", "certainty", "confidence_score", "probability"),
    "limitations": ("limitations", "limitation", "cannot_assess", "limits", "caveats", "uncertainties"),
}
_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|i apologi[sz]e|i can'?t|i cannot|i am unable|i'?m unable|i'?m not able|"
    r"as an ai|as a language model)",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^\s*```\w*\s*$", re.MULTILINE)


def _norm_key(key: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(key).lower()).strip("_")


def _get(obj: Mapping[str, Any], field: str) -> Any:
    by_key = {_norm_key(k): v for k, v in obj.items()}
    for key in _KEYS[field]:
        if key in by_key:
            return by_key[key]
    return None


def degenerate_reason(text: str) -> str | None:
    """Why ``text`` is not language a doctor can use (empty, no words, a loop), or None."""
    words = re.findall(r"\w+", text.lower())
    if not text.strip():
        return "empty reply"
    if not words:
        return "no words in reply (punctuation only)"
    if len(words) >= 6 and len(set(words)) / len(words) < 0.3:
        return "repetitive reply"
    return None


def findings_from_mapping(obj: Mapping[str, Any]) -> tuple[ImageFindings | None, str]:
    """Findings from one JSON object with synonym keys; (None, reason) when it has no usable impression."""
    impression = _get(obj, "impression")
    if isinstance(impression, (list, tuple)):
        impression = "; ".join(coerce_items(impression))
    if not isinstance(impression, str) or not impression.strip():
        return None, "JSON without an impression"
    if is_placeholder(impression):
        return None, "JSON impression is a placeholder copied from the prompt"
    problem = degenerate_reason(impression)
    if problem is not None:
        return None, f"JSON impression unusable: {problem}"
    try:
        findings = ImageFindings(
            observations=_get(obj, "observations"),
            impression=impression,
            confidence=_get(obj, "confidence"),
            limitations=_get(obj, "limitations"),
        )
    except ValidationError:
        return None, "JSON with invalid fields"
    return findings, "parsed JSON object"


def _nested(obj: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The object, then dicts nested under its keys ({"read": {...}})."""
    yield obj
    for value in obj.values():
        if isinstance(value, Mapping):
            yield from _nested(value)


def _from_json(text: str) -> tuple[FindingsParse | None, str | None, bool]:
    """(result, why JSON failed, whether the text held any JSON object at all)."""
    objects = list(scan_objects(text))
    failure: str | None = None
    # Last complete object first: a model that echoes the prompt's example and then answers means the answer.
    for start, end, complete in reversed(objects):
        if not complete:
            continue
        loaded = load_object(text[start:end])
        if loaded is None:
            failure = failure or "malformed JSON"
            continue
        for candidate in _nested(loaded):
            findings, why = findings_from_mapping(candidate)
            if findings is not None:
                return FindingsParse(findings, why, "json"), None, True
            failure = failure or why
    for start, end, complete in objects:
        if complete:
            continue
        closed = close_truncated(text[start:end])
        for candidate in (closed if isinstance(closed, dict) else {}, salvage_object(text[start:end])):
            findings, why = findings_from_mapping(candidate)
            if findings is not None:
                return FindingsParse(findings, "salvaged truncated JSON", "json_salvage"), None, True
        failure = failure or f"truncated JSON: {why}"
    return None, failure, bool(objects)


def parse_findings(reply: str) -> FindingsParse:
    """Read an image reply into findings; never raises. See the module docstring for the order of attempts."""
    if not isinstance(reply, str):
        return FindingsParse(None, "reply is not text")
    answer, _ = split_thinking(reply[:_MAX_SCAN_CHARS])  # backends strip thinking; this covers foreign models
    if not answer.strip():
        return FindingsParse(None, "empty reply")
    result, failure, had_json = _from_json(answer)
    if result is not None:
        return result
    if had_json:
        return FindingsParse(None, failure or "no usable JSON object")
    prose = " ".join(_FENCE.sub("", answer).split())
    if _REFUSAL.match(prose):
        return FindingsParse(None, "refusal")
    problem = degenerate_reason(prose)
    if problem is not None:
        return FindingsParse(None, problem)
    if len(re.findall(r"\w+", prose)) < 3:
        return FindingsParse(None, "reply too short to be a read")
    if is_placeholder(prose):
        return FindingsParse(None, "placeholder copied from the prompt")
    return FindingsParse(ImageFindings(impression=prose, confidence=0.0), "prose", "prose")


# --- rendering for the doctor ---------------------------------------------------------------------------------------


def _sentence_items(items: list[str]) -> str:
    return "; ".join(item.rstrip(" .;") for item in items)


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def render_findings(findings: ImageFindings) -> str:
    """One compact paragraph: "Observations: a; b. Impression: X (confidence 0.6). Cannot assess: c." """
    parts: list[str] = []
    if findings.observations:
        parts.append(f"Observations: {_sentence_items(findings.observations)}.")
    parts.append(f"Impression: {findings.impression.rstrip(' .;')} (confidence {_number(findings.confidence)}).")
    if findings.limitations:
        parts.append(f"Cannot assess: {_sentence_items(findings.limitations)}.")
    return " ".join(parts)
