"""What a patient's record holds, per resource type and code, for a model to choose what to fetch.

Counted over `lines.unique_resources` (citable, one per Type/id), void resources included (they exist). A type's
codes come from its first present field in CODE_FIELDS (for a list field, every element); each code counts once
per resource, grouped by `codes.concept_key`. Categories (the first coded coding of each `category`, once per
resource) are kept for the types in CATEGORY_TYPES. Codes are ordered by latest date, then count, then display.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tools.records.codes import as_list, as_mapping, concept_coding, concept_key, concept_text
from tools.records.dates import When, clinical_when, day, sort_key
from tools.records.lines import unique_resources

CODE_FIELDS: dict[str, tuple[str, ...]] = {
    "Observation": ("code",), "Condition": ("code",), "Procedure": ("code",), "DiagnosticReport": ("code",),
    "AllergyIntolerance": ("code",), "MedicationRequest": ("medicationCodeableConcept",),
    "MedicationStatement": ("medicationCodeableConcept",), "MedicationAdministration": ("medicationCodeableConcept",),
    "Immunization": ("vaccineCode",), "Encounter": ("type",), "CarePlan": ("category",), "Device": ("type",),
    "DocumentReference": ("type",), "ImagingStudy": ("procedureCode",), "Goal": ("description",),
    "Claim": ("type",), "ExplanationOfBenefit": ("type",), "ServiceRequest": ("code",),
}
GENERIC_CODE_FIELDS = ("code", "type", "category")
CODES_SHOWN = 25
CATEGORY_TYPES = frozenset({"Observation", "DiagnosticReport", "Condition"})  # where category guides a search


@dataclass(frozen=True)
class ManifestCode:
    """One code of one resource type: how often it occurs and when it last did."""

    display: str
    system: str  # "" when the coding had none, or for a text-only concept
    code: str  # "" for a text-only concept
    count: int
    latest: When | None

    @property
    def token(self) -> str:
        """"system|code" as a FHIR search token, or the display for a text-only concept."""
        return f"{self.system}|{self.code}" if self.code else self.display


@dataclass(frozen=True)
class ManifestType:
    """One resource type: how many resources, their latest date, and their codes most recent first."""

    resource_type: str
    count: int
    latest: When | None
    codes: tuple[ManifestCode, ...]
    categories: tuple[tuple[str, int], ...] = ()  # (category code, resources), most frequent first


@dataclass(frozen=True)
class Manifest:
    """Resource types by count (descending, then name)."""

    types: tuple[ManifestType, ...]

    def counts(self) -> dict[str, int]:
        """Resources per type."""
        return {t.resource_type: t.count for t in self.types}

    def render(self, *, codes_per_type: int = CODES_SHOWN) -> str:
        """One line per type (with Observation categories), then its `codes_per_type` most recent codes."""
        out = []
        for entry in self.types:
            shown = entry.codes[:codes_per_type]
            parts = [_plural(entry.count, "resource")]
            if entry.categories:
                parts.append("categories " + ", ".join(f"{name} {n}" for name, n in entry.categories))
            if entry.latest is not None:
                parts.append(f"latest {day(entry.latest)}")
            if entry.codes:
                cap = f", showing the {len(shown)} most recent" if len(shown) < len(entry.codes) else ""
                parts.append(_plural(len(entry.codes), "code") + cap)
            out.append(f"{entry.resource_type}: " + "; ".join(parts))
            for code in shown:
                token = f" ({code.token})" if code.code else ""
                when = f", latest {day(code.latest)}" if code.latest is not None else ""
                out.append(f"  - {code.display}{token} x{code.count}{when}")
        return "\n".join(out)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _concepts(raw: Mapping[str, Any]) -> list[Any]:
    for name in CODE_FIELDS.get(str(raw["resourceType"]), GENERIC_CODE_FIELDS):
        value = raw.get(name)
        if value:
            return as_list(value) if isinstance(value, list) else [as_mapping(value)]
    return []


def build_manifest(resources: Iterable[Mapping[str, Any]]) -> Manifest:
    """Per type: count, latest clinical date, and codes (display, system|code, count, latest date)."""
    counts: dict[str, int] = {}
    latest: dict[str, When | None] = {}
    codes: dict[str, dict[str, list[Any]]] = {}
    categories: dict[str, dict[str, int]] = {}
    for raw in unique_resources(resources):
        kind, when = str(raw["resourceType"]), clinical_when(raw)
        counts[kind] = counts.get(kind, 0) + 1
        if sort_key(when) >= sort_key(latest.get(kind)):
            latest[kind] = when
        for code in {c for concept in as_list(raw.get("category")) if (c := concept_coding(concept))}:
            categories.setdefault(kind, {}).setdefault(code[1], 0)
            categories[kind][code[1]] += 1
        seen: set[str] = set()
        for concept in _concepts(raw):
            key = concept_key(concept)
            if key is None or key in seen:
                continue
            seen.add(key)
            slot = codes.setdefault(kind, {}).setdefault(key, [concept, 0, None])
            slot[1] += 1
            if sort_key(when) >= sort_key(slot[2]):
                slot[2] = when
    types = [ManifestType(kind, counts[kind], latest.get(kind), _codes(codes.get(kind, {})),
                          _categories(categories.get(kind, {})) if kind in CATEGORY_TYPES else ())
             for kind in counts]
    types.sort(key=lambda t: (-t.count, t.resource_type))
    return Manifest(tuple(types))


def _codes(found: dict[str, list[Any]]) -> tuple[ManifestCode, ...]:
    items = []
    for concept, count, when in found.values():
        system, code = concept_coding(concept) or ("", "")
        items.append(ManifestCode(concept_text(concept) or code, system, code, count, when))
    items.sort(key=lambda c: (-c.count, c.display))
    items.sort(key=lambda c: sort_key(c.latest), reverse=True)
    return tuple(items)


def _categories(found: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(found.items(), key=lambda item: (-item[1], item[0])))
