"""Reading coded values, quantities and references out of raw FHIR JSON, and making record text safe to show.

Every string taken from a record passes through `clean` (one line, no control or format characters, no square
brackets that could pose as a `[Type/id]` citation, length-capped). Free text (valueString, notes, conclusions,
dosage text, titles) is further wrapped by `quote`, so a model sees it as quoted data. Nothing here raises on
malformed input; a missing or ill-typed field reads as None.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

DISPLAY_LIMIT = 120
FREE_TEXT_LIMIT = 160

_SPACES = re.compile(r"\s+")
# A short bracketed token without a slash (UCUM's mm[Hg], [iU]) is kept; any other square bracket becomes a
# parenthesis, so record text can never contain something shaped like a "[Type/id]" citation.
_BRACKET = re.compile(r"\[[^\[\]/\s]{1,16}\]|[\[\]]")


def _unbracket(match: re.Match[str]) -> str:
    token = match.group(0)
    return token if len(token) > 1 else ("(" if token == "[" else ")")


def clean(value: Any, limit: int = DISPLAY_LIMIT) -> str:
    """One safe line of at most `limit` characters (an ellipsis marks a cut); "" for a non-string."""
    if not isinstance(value, str):
        return ""
    # Cc covers newlines and other controls; Cf covers bidi overrides and zero-width characters that can hide text.
    kept = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in value)
    text = _BRACKET.sub(_unbracket, _SPACES.sub(" ", kept)).strip()
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def quote(value: Any, limit: int = FREE_TEXT_LIMIT) -> str:
    """Record free text as a quoted, single-line, capped string; '""' when there is none."""
    return '"' + clean(value, limit).replace('"', "'") + '"'


def as_mapping(value: Any) -> Mapping[str, Any]:
    """The value when it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """The value when it is a JSON array, else an empty list."""
    return value if isinstance(value, list) else []


def codings(concept: Any) -> list[Mapping[str, Any]]:
    """The codings of a CodeableConcept (or a bare Coding) that are objects."""
    concept = as_mapping(concept)
    if "coding" not in concept and ("code" in concept or "display" in concept):
        return [concept]
    return [c for c in as_list(concept.get("coding")) if isinstance(c, Mapping)]


def concept_text(concept: Any) -> str | None:
    """What a person would read: the concept's text, else the first coding display, else its code."""
    text = clean(as_mapping(concept).get("text"))
    if text:
        return text
    for coding in codings(concept):
        shown = clean(coding.get("display")) or clean(coding.get("code"))
        if shown:
            return shown
    return None


def concept_coding(concept: Any) -> tuple[str, str] | None:
    """(system, code) of the first coding that has a code; system may be ""."""
    for coding in codings(concept):
        code = coding.get("code")
        if isinstance(code, str) and code:
            system = coding.get("system")
            return (system if isinstance(system, str) else "", code)
    return None


def concept_key(concept: Any) -> str | None:
    """A stable grouping key: "system|code" of the first coded coding, else "text:<text>", else None."""
    found = concept_coding(concept)
    if found:
        return f"{found[0]}|{found[1]}"
    text = concept_text(concept)
    return f"text:{text.lower()}" if text else None


def has_code(concepts: Any, code: str) -> bool:
    """Whether any coding of a CodeableConcept or a list of them carries exactly this code."""
    items = concepts if isinstance(concepts, list) else [concepts]
    return any(c.get("code") == code for item in items for c in codings(item))


def status_code(concept: Any) -> str | None:
    """The code of a status CodeableConcept such as Condition.clinicalStatus (R4), or a bare R3-style string."""
    if isinstance(concept, str):
        return concept or None
    found = concept_coding(concept)
    return found[1] if found else None


def number_text(value: Any) -> str | None:
    """A measured number with sensible precision: 176, 6.1, 0.0123; None for non-numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    size = abs(value)
    text = f"{value:.1f}" if size >= 100 else f"{value:.2f}" if size >= 1 else f"{value:.3g}"
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def quantity_text(quantity: Any) -> str | None:
    """"< 5.6 mmol/L" from a Quantity; None when it has no number."""
    quantity = as_mapping(quantity)
    number = number_text(quantity.get("value"))
    if number is None:
        return None
    comparator = clean(quantity.get("comparator"), 2)
    unit = clean(quantity.get("unit"), 24) or clean(quantity.get("code"), 24)
    return " ".join(part for part in (comparator, number, unit) if part)


def reference_text(reference: Any) -> str | None:
    """A Reference as a reader sees it: its display, else its reference string."""
    reference = as_mapping(reference)
    return clean(reference.get("display")) or clean(reference.get("reference")) or None


def first_text(values: Iterable[Any], limit: int = 3) -> list[str]:
    """Readable texts of up to `limit` CodeableConcepts, skipping empty ones and repeats."""
    seen: list[str] = []
    for value in values:
        text = concept_text(value)
        if text and text not in seen:
            seen.append(text)
        if len(seen) >= limit:
            break
    return seen


VOID_STATUSES = frozenset({"entered-in-error", "cancelled", "not-done"})
VOID_VERIFICATIONS = frozenset({"entered-in-error", "refuted"})


def is_void(raw: Mapping[str, Any]) -> bool:
    """Whether the record says this resource did not happen or was a mistake: `status` (a plain code) is
    entered-in-error, cancelled or not-done, or `verificationStatus` is entered-in-error or refuted."""
    status = raw.get("status")
    return (isinstance(status, str) and status in VOID_STATUSES) or (
        status_code(raw.get("verificationStatus")) in VOID_VERIFICATIONS)


def in_category(raw: Mapping[str, Any], code: str) -> bool:
    """Whether any category coding of the resource has exactly this code (e.g. "laboratory", "vital-signs")."""
    return has_code(as_list(raw.get("category")), code)
