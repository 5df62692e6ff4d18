"""Pure helpers of the record question-answering graph: search parameters from a plan, the catalog of codes from a
manifest, the requery's widening, and the references a fact needs followed.

The graph, never the model, writes search parameters: a plan names types, codes from the patient's own catalog
and dates, and ``fetch_requests`` turns them into FHIR R4 parameters (``patient``, the type's date parameter
with ``ge``/``le``, its code parameter, ``_sort`` newest first, ``_count``). Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal

from agents.navigator import DateWindow, FetchPlan
from agents.navigator.plan import shared_words, significant_words
from tools.records import Manifest
from tools.records.dates import CLINICAL_DATE_FIELDS, clinical_when
from tools.records.manifest import CODE_FIELDS

__all__ = [
    "FOLLOWED_FIELDS",
    "MANIFEST_ELEMENTS",
    "MANIFEST_TYPES",
    "SEARCH_SPECS",
    "FetchRequest",
    "Widening",
    "as_of",
    "catalog_from",
    "fetch_requests",
    "focus_manifest",
    "references_to_follow",
    "unique",
    "widening_for",
]


@dataclass(frozen=True)
class SearchSpec:
    """The FHIR R4 search parameter names for one type: its date parameter and its code parameter."""

    date: str | None
    code: str | None
    patient: str = "patient"


SEARCH_SPECS: dict[str, SearchSpec] = {
    "Observation": SearchSpec("date", "code"),
    "Condition": SearchSpec("onset-date", "code"),
    "MedicationRequest": SearchSpec("authoredon", "code"),
    "MedicationStatement": SearchSpec("effective", "code"),
    "AllergyIntolerance": SearchSpec("date", "code"),
    "Procedure": SearchSpec("date", "code"),
    "Immunization": SearchSpec("date", "vaccine-code"),
    "Encounter": SearchSpec("date", "type"),
    "DiagnosticReport": SearchSpec("date", "code"),
    "CarePlan": SearchSpec("date", "category"),
    "DocumentReference": SearchSpec("date", "type"),
    "Device": SearchSpec(None, "type"),
    "Patient": SearchSpec(None, None, patient="_id"),
}
# What the manifest is built from: the clinical types, not billing (Claim, ExplanationOfBenefit).
MANIFEST_TYPES: tuple[str, ...] = tuple(SEARCH_SPECS)
# The top-level elements the manifest reads (codes, categories, clinical dates), so its fetch can stay light.
MANIFEST_ELEMENTS: tuple[str, ...] = tuple(
    sorted(
        {name for fields in CODE_FIELDS.values() for name in fields}
        | {path.split(".")[0] for fields in CLINICAL_DATE_FIELDS.values() for path in fields}
        | {"category", "status", "name", "gender"}
    )
)
# A fact that names another resource it depends on: the drug of a prescription, where a measurement was taken.
FOLLOWED_FIELDS: dict[str, tuple[str, ...]] = {
    "MedicationRequest": ("medicationReference",),
    "MedicationStatement": ("medicationReference",),
    "MedicationAdministration": ("medicationReference",),
    "MedicationDispense": ("medicationReference",),
    "Observation": ("encounter",),
}
_RELATIVE = re.compile(r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}")

Widening = Literal["codes dropped", "window dropped"]


@dataclass(frozen=True)
class FetchRequest:
    """One search the fetch node runs."""

    resource_type: str
    params: dict[str, str | list[str]]


def catalog_from(manifest: Manifest) -> dict[str, dict[str, str]]:
    """Type -> code -> display for every coded concept of the manifest (text-only concepts cannot be searched)."""
    return {t.resource_type: {c.code: c.display for c in t.codes if c.code} for t in manifest.types}


def as_of(resources: Iterable[Mapping[str, Any]], today: date) -> list[Mapping[str, Any]]:
    """The resources that had happened by ``today`` (undated ones kept): the record as of the stated now."""
    kept = []
    for raw in resources:
        when = clinical_when(raw)
        if when is None or (when.date() if hasattr(when, "hour") else when) <= today:
            kept.append(raw)
    return kept


def focus_manifest(manifest: Manifest, question: str) -> Manifest:
    """The manifest with, in each type, the codes whose display shares a significant word with the question moved
    first, so a rendering capped to the most recent codes still shows the ones the question names."""
    words = significant_words(question)
    if not words:
        return manifest
    types = []
    for entry in manifest.types:
        named = [c for c in entry.codes if shared_words(words, significant_words(c.display))]
        rest = [c for c in entry.codes if c not in named]
        types.append(replace(entry, codes=tuple(named + rest)))
    return replace(manifest, types=tuple(types))


def _clip(window: DateWindow, start: date | None, end: date | None) -> tuple[date | None, date | None]:
    """The plan's dates narrowed to the question's window; a plan range outside it is ignored."""
    lo = max(d for d in (window.start, start) if d is not None) if (window.start or start) else None
    hi = min(d for d in (window.end, end) if d is not None) if (window.end or end) else None
    if lo is not None and hi is not None and lo > hi and not window.empty:
        return window.start, window.end
    return lo, hi


def fetch_requests(
    plan: FetchPlan,
    patient_id: str,
    window: DateWindow,
    *,
    widening: Widening | None = None,
    max_per_type: int = 50,
    latest_per_code: int = 3,
) -> list[FetchRequest]:
    """The searches for ``plan``: one per type, or one per code when the question asks for the latest (so each
    code's newest entries come back even when another code has many more). ``widening`` drops the codes, or the
    dates, for the requery."""
    requests: list[FetchRequest] = []
    for fetch in plan.fetches:
        spec = SEARCH_SPECS.get(fetch.resource_type, SearchSpec("date", "code"))
        params: dict[str, str | list[str]] = {spec.patient: patient_id}
        if spec.date is not None:
            if widening != "window dropped":
                start, end = _clip(window, fetch.start, fetch.end)
                bounds = [f"ge{start.isoformat()}"] if start else []
                bounds += [f"le{end.isoformat()}"] if end else []
                if bounds:
                    params[spec.date] = bounds
            params["_sort"] = f"-{spec.date}"
        codes = fetch.codes if spec.code is not None and widening is None else []
        if codes and window.latest:
            for code in codes:
                requests.append(
                    FetchRequest(fetch.resource_type, {**params, spec.code: code, "_count": str(latest_per_code)})
                )
            continue
        if codes:
            params[spec.code] = ",".join(codes)  # type: ignore[index]
        params["_count"] = str(max_per_type)
        requests.append(FetchRequest(fetch.resource_type, params))
    return requests


def widening_for(plan: FetchPlan, window: DateWindow) -> Widening | None:
    """How the one requery widens an empty first fetch: drop the codes if any, else the dates if the question
    named a period; None when nothing can be widened (a second identical fetch would find nothing either)."""
    if any(f.codes for f in plan.fetches):
        return "codes dropped"
    if plan.fetches and (window.bounded or any(f.start or f.end for f in plan.fetches)):
        return "window dropped"
    return None


def references_to_follow(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, "Type/id") for each relative reference in ``FOLLOWED_FIELDS`` of this resource; absolute URLs,
    ``urn:`` and contained references are never followed (a record must not point the graph elsewhere)."""
    found: list[tuple[str, str]] = []
    for name in FOLLOWED_FIELDS.get(str(raw.get("resourceType")), ()):
        value = raw.get(name)
        for item in value if isinstance(value, list) else [value]:
            reference = item.get("reference") if isinstance(item, Mapping) else None
            if isinstance(reference, str) and _RELATIVE.fullmatch(reference):
                found.append((name, reference))
    return found


def unique(items: Iterable[str]) -> list[str]:
    """The items without repeats, in order of first appearance."""
    return list(dict.fromkeys(items))
