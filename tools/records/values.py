"""The value of an Observation as text and as a number: quantities, coded and string values, components
(blood pressure as systolic/diastolic), reference ranges and interpretations. Never raises on malformed input."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tools.records.codes import (
    as_list,
    as_mapping,
    clean,
    concept_coding,
    concept_text,
    has_code,
    number_text,
    quantity_text,
    quote,
)
from tools.records.dates import day, parse_when

SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"
INTERPRETATIONS = {"H": "high", "HH": "critically high", "L": "low", "LL": "critically low", "N": "normal",
                   "A": "abnormal", "AA": "critically abnormal", "POS": "positive", "NEG": "negative"}


def numeric_value(raw: Mapping[str, Any]) -> float | None:
    """valueQuantity.value (or valueInteger) as a float, when it is a finite number."""
    value = as_mapping(raw.get("valueQuantity")).get("value")
    if value is None:
        value = raw.get("valueInteger")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def value_unit(raw: Mapping[str, Any]) -> str | None:
    """The unit of valueQuantity (its human unit, else its UCUM code)."""
    quantity = as_mapping(raw.get("valueQuantity"))
    return clean(quantity.get("unit"), 24) or clean(quantity.get("code"), 24) or None


def value_text(raw: Mapping[str, Any]) -> str | None:
    """The value[x] of an Observation or component as text; free text is quoted. None when there is no value."""
    if "valueQuantity" in raw:
        return quantity_text(raw.get("valueQuantity"))
    if "valueCodeableConcept" in raw:
        return concept_text(raw.get("valueCodeableConcept"))
    if isinstance(raw.get("valueString"), str):
        return quote(raw.get("valueString"))
    if isinstance(raw.get("valueBoolean"), bool):
        return "yes" if raw["valueBoolean"] else "no"
    if "valueInteger" in raw:
        return number_text(raw.get("valueInteger"))
    for key in ("valueDateTime", "valueTime"):
        if isinstance(raw.get(key), str):
            return clean(raw[key], 32)
    if "valuePeriod" in raw:
        period = as_mapping(raw.get("valuePeriod"))
        return f"{day(parse_when(period.get('start')))} to {day(parse_when(period.get('end')))}"
    if "valueRatio" in raw:
        ratio = as_mapping(raw.get("valueRatio"))
        top, bottom = quantity_text(ratio.get("numerator")), quantity_text(ratio.get("denominator"))
        return f"{top}/{bottom}" if top and bottom else None
    absent = concept_text(raw.get("dataAbsentReason"))
    return f"no value ({absent})" if absent else None


def reference_range(raw: Mapping[str, Any]) -> str | None:
    """The first referenceRange as "ref 4.0-5.6", "ref < 5.6", "ref > 60" or its text."""
    for item in as_list(raw.get("referenceRange")):
        item = as_mapping(item)
        low = number_text(as_mapping(item.get("low")).get("value"))
        high = number_text(as_mapping(item.get("high")).get("value"))
        if low and high:
            return f"ref {low}-{high}"
        if high:
            return f"ref < {high}"
        if low:
            return f"ref > {low}"
        if clean(item.get("text")):
            return f"ref {quote(item.get('text'), 60)}"
    return None


def range_width(raw: Mapping[str, Any]) -> float | None:
    """high - low of the first reference range that has both, used to judge what counts as a change."""
    for item in as_list(raw.get("referenceRange")):
        low = as_mapping(as_mapping(item).get("low")).get("value")
        high = as_mapping(as_mapping(item).get("high")).get("value")
        if isinstance(low, int | float) and isinstance(high, int | float) and high > low:
            return float(high - low)
    return None


def interpretation(raw: Mapping[str, Any]) -> str | None:
    """"high", "low", ... from the interpretation codes (v3 ObservationInterpretation), else their text."""
    words = []
    for concept in as_list(raw.get("interpretation")):
        coded = concept_coding(concept)
        word = INTERPRETATIONS.get(coded[1]) if coded else None
        word = word or concept_text(concept)
        if word and word not in words:
            words.append(word.lower() if word in INTERPRETATIONS.values() else word)
    return ", ".join(words) or None


def components_text(raw: Mapping[str, Any]) -> str | None:
    """Blood pressure as "158/101 mm[Hg]"; other components as "name value; name value"."""
    components = [as_mapping(c) for c in as_list(raw.get("component"))]
    if not components:
        return None
    systolic = next((c for c in components if has_code(c.get("code"), SYSTOLIC)), None)
    diastolic = next((c for c in components if has_code(c.get("code"), DIASTOLIC)), None)
    if systolic and diastolic:
        top, bottom = number_text(numeric_value(systolic)), number_text(numeric_value(diastolic))
        if top and bottom:
            unit = value_unit(systolic) or ""
            return f"{top}/{bottom} {unit}".strip()
    parts = []
    for component in components[:6]:
        value = value_text(component)
        if value:
            parts.append(f"{concept_text(component.get('code')) or 'component'} {value}")
    return "; ".join(parts) or None


def observation_value(raw: Mapping[str, Any]) -> str | None:
    """Value (or components), reference range and interpretation: "6.1 % (ref 4.0-5.6) high"."""
    value = value_text(raw) or components_text(raw)
    ref = reference_range(raw)
    parts = [value, f"({ref})" if ref else None, interpretation(raw)]
    return " ".join(p for p in parts if p) or None
