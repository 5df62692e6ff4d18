"""Laboratory results grouped per test code, newest first, each value with its direction against the one before.

A direction compares a value with the next older numeric value of the same test in the same unit. The change
counts as "stable" when it is at most STABLE_FRACTION of the reference range's width (when the range has a low
and a high), else of the older value's magnitude; larger changes are "up" or "down". No numeric predecessor, a
unit change or a non-numeric value gives None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from tools.records.codes import concept_key, concept_text, in_category, is_void
from tools.records.dates import When, clinical_when, sort_key
from tools.records.lines import source_of, unique_resources
from tools.records.values import (
    components_text,
    interpretation,
    numeric_value,
    range_width,
    reference_range,
    value_text,
    value_unit,
)

Direction = Literal["up", "down", "stable"]
STABLE_FRACTION = 0.05


@dataclass(frozen=True)
class LabValue:
    """One laboratory Observation: its value, when it was taken and where it came from."""

    source: str  # "Observation/id"
    version: str | None
    when: When | None
    text: str  # "6.1 %", a coded or quoted value, or "no value"
    value: float | None  # the number behind `text`, when there is one
    unit: str | None
    reference_range: str | None  # "ref 4-5.6"
    interpretation: str | None  # "high"
    direction: Direction | None = None  # against the next older value (module docstring)
    range_width: float | None = None

    @property
    def versioned_source(self) -> str:
        """"Observation/id/_history/v", or "Observation/id" when unversioned."""
        return f"{self.source}/_history/{self.version}" if self.version else self.source


@dataclass(frozen=True)
class LabTrend:
    """All values of one lab test (grouped by `concept_key` of Observation.code), newest first."""

    key: str  # "system|code" or "text:<name>"
    name: str
    values: tuple[LabValue, ...]

    @property
    def latest(self) -> LabValue:
        """The newest value."""
        return self.values[0]


def lab_value(raw: Mapping[str, Any]) -> LabValue | None:
    """A LabValue for a citable Observation (direction not yet set), else None."""
    source = source_of(raw)
    if source is None:
        return None
    return LabValue(
        source=f"{source[0]}/{source[1]}", version=source[2], when=clinical_when(raw),
        text=value_text(raw) or components_text(raw) or "no value", value=numeric_value(raw), unit=value_unit(raw),
        reference_range=reference_range(raw), interpretation=interpretation(raw), range_width=range_width(raw),
    )


def direction(newer: LabValue, older: LabValue) -> Direction | None:
    """How `newer` moved from `older` (module docstring for the tolerance)."""
    if newer.value is None or older.value is None or newer.unit != older.unit:
        return None
    scale = older.range_width if older.range_width else abs(older.value)
    change = newer.value - older.value
    if abs(change) <= STABLE_FRACTION * scale:
        return "stable"
    return "up" if change > 0 else "down"


def is_lab(raw: Mapping[str, Any]) -> bool:
    """An Observation in category "laboratory" that is not void (codes.is_void) and has a code."""
    return (raw.get("resourceType") == "Observation" and in_category(raw, "laboratory") and not is_void(raw)
            and concept_key(raw.get("code")) is not None)


def lab_trends(resources: Iterable[Mapping[str, Any]]) -> list[LabTrend]:
    """One LabTrend per lab test code: tests by latest date descending (then name), values by date descending
    (then id). Counted: lab Observations (is_lab) among lines.unique_resources (citable, one per Type/id)."""
    groups: dict[str, tuple[str, list[LabValue]]] = {}
    for raw in unique_resources(resources):
        if not is_lab(raw):
            continue
        value = lab_value(raw)
        if value is None:
            continue
        key = concept_key(raw.get("code")) or ""
        groups.setdefault(key, (concept_text(raw.get("code")) or key, []))[1].append(value)
    trends = []
    for key, (name, values) in groups.items():
        values.sort(key=lambda v: v.source)
        values.sort(key=lambda v: sort_key(v.when), reverse=True)
        directed = [_with_direction(value, values[i + 1:]) for i, value in enumerate(values)]
        trends.append(LabTrend(key, name, tuple(directed)))
    trends.sort(key=lambda t: (t.name.lower(), t.key))
    trends.sort(key=lambda t: sort_key(t.latest.when), reverse=True)
    return trends


def _with_direction(value: LabValue, older: list[LabValue]) -> LabValue:
    previous = next((o for o in older if o.value is not None), None)
    if previous is None:
        return value
    return replace(value, direction=direction(value, previous))
