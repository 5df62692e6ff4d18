"""The record question-answering graph's view of a patient's record: the ``RecordStore`` Protocol, and
``InMemoryRecordStore``, a small real implementation over resource dicts (a bundle file, a test record).

A store answers three requests with raw FHIR JSON dicts: all of a patient's resources (optionally only some
types, optionally only some elements), a search with FHIR parameters, and the resolution of a relative reference.
Search parameters follow FHIR R4 names (``patient``, ``code``, ``date=ge2021-01-01``, ``_sort=-date``); ``_count``
caps the number of resources returned in total (a paging client stops there rather than after one page).

Errors (every store raises these, translating its own with ``raise ... from exc``):

    RecordStoreError                 a request failed; the graph records it and answers from what it has
    └── UnsupportedSearchError       a parameter, modifier or value the store cannot evaluate (also ValueError)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tools.records.dates import (
    CLINICAL_DATE_FIELDS,
    GENERIC_DATE_FIELDS,
    When,
    parse_when,
    sort_key,
)

__all__ = ["InMemoryRecordStore", "RecordStore", "RecordStoreError", "SearchParams", "UnsupportedSearchError"]

SearchParams = Mapping[str, str | Sequence[str]]  # a repeated parameter (two date bounds) is a sequence


class RecordStoreError(Exception):
    """A store request failed (transport, server, or a request the store cannot serve)."""


class UnsupportedSearchError(RecordStoreError, ValueError):
    """A search parameter, modifier or value that the store cannot evaluate."""


@runtime_checkable
class RecordStore(Protocol):
    """A patient's record as the question-answering graph reads it: raw FHIR JSON dicts, read-only."""

    async def patient_resources(
        self, patient_id: str, types: Sequence[str] | None = None, *, elements: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """The patient's resources (the Patient included), only ``types`` when given. With ``elements`` a store
        may return only those top-level elements (plus resourceType, id and meta), as FHIR ``_elements`` does."""
        ...

    async def search(self, resource_type: str, params: SearchParams) -> list[dict[str, Any]]:
        """The resources of ``resource_type`` matching FHIR search ``params`` (``_count`` caps the total)."""
        ...

    async def resolve(self, reference: str) -> dict[str, Any] | None:
        """The resource a relative reference (``Type/id`` or ``Type/id/_history/v``) names, or None when absent."""
        ...


_PATIENT_FIELDS = ("subject", "patient", "beneficiary")
_TOKEN_FIELDS: dict[str, tuple[str, ...]] = {
    "code": ("code", "medicationCodeableConcept"),
    "vaccine-code": ("vaccineCode",),
    "type": ("type",),
    "category": ("category",),
    "clinical-status": ("clinicalStatus",),
    "status": ("status",),
}
# Date parameters -> the element prefixes they read (onset reads onsetDateTime and onsetPeriod); "date" reads the
# type's clinical date (tools.records.dates), as servers map it per type.
_DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "onset-date": ("onset",),
    "authoredon": ("authoredOn",),
    "recorded-date": ("recordedDate",),
    "effective": ("effective",),
    "occurrence": ("occurrence",),
    "period": ("period",),
    "created": ("created",),
    "issued": ("issued",),
}
_PREFIXES = ("eq", "ne", "ge", "gt", "le", "lt")
_ALWAYS_KEPT = ("resourceType", "id", "meta")

Span = tuple[date, date]


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _value_bounds(value: Any) -> tuple[When | None, When | None] | None:
    """(start, end) of a date, dateTime or Period; None when the value is not one."""
    if isinstance(value, Mapping):
        start, end = parse_when(value.get("start")), parse_when(value.get("end"))
        return None if start is None and end is None else (start, end)
    when = parse_when(value)
    return (when, when) if when is not None else None


def _resource_bounds(raw: Mapping[str, Any], param: str) -> tuple[When | None, When | None] | None:
    if param == "date":
        kind = str(raw.get("resourceType"))
        for path in CLINICAL_DATE_FIELDS.get(kind, GENERIC_DATE_FIELDS):
            value: Any = raw
            for part in path.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
            if (bounds := _value_bounds(value)) is not None:
                return bounds
        return None
    for prefix in _DATE_FIELDS[param]:
        for key, value in raw.items():
            if key.startswith(prefix) and (bounds := _value_bounds(value)) is not None:
                return bounds
    return None


def _resource_span(raw: Mapping[str, Any], param: str) -> Span | None:
    """The days the resource's value for a date parameter covers (an open period end runs to date.max)."""
    bounds = _resource_bounds(raw, param)
    if bounds is None:
        return None
    start, end = bounds
    return (_day(start) if start else date.min, _day(end) if end else date.max)


def _param_span(text: str) -> Span:
    """The days a search value covers: "2021" is the whole year, "2021-03" the month."""
    when = parse_when(text)
    if when is None:
        raise UnsupportedSearchError(f"not a FHIR date: {text!r}")
    first = _day(when)
    parts = text.split("T")[0].split("-")
    if "T" in text or len(parts) == 3:
        return first, first
    if len(parts) == 2:
        following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        return first, date.fromordinal(following.toordinal() - 1)
    return first, date(first.year, 12, 31)


def _date_matches(span: Span | None, value: str) -> bool:
    prefix, text = (value[:2], value[2:]) if value[:2] in _PREFIXES else ("eq", value)
    low, high = _param_span(text)
    if span is None:
        return False
    lo, hi = span
    return {
        "eq": lo >= low and hi <= high,
        "ne": not (lo >= low and hi <= high),
        "ge": hi >= low,
        "gt": hi > high,
        "le": lo <= high,
        "lt": lo < low,
    }[prefix]


def _codings(value: Any) -> list[tuple[str, str]]:
    items = value if isinstance(value, list) else [value]
    found: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, str):
            found.append(("", item))
        elif isinstance(item, Mapping):
            codings = item.get("coding") if isinstance(item.get("coding"), list) else [item]
            for coding in codings:
                if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                    system = coding.get("system")
                    found.append((system if isinstance(system, str) else "", coding["code"]))
    return found


def _token_matches(raw: Mapping[str, Any], param: str, value: str) -> bool:
    codings = [c for field in _TOKEN_FIELDS[param] for c in _codings(raw.get(field))]
    for token in value.split(","):
        system, bar, code = token.partition("|")
        if not bar:
            system, code = "", token
            if any(c == code for _, c in codings):
                return True
        elif any((not system or s == system) and (not code or c == code) for s, c in codings):
            return True
    return False


def _reference_id(raw: Mapping[str, Any], fields: Sequence[str]) -> list[str]:
    refs = [raw.get(f) for f in fields]
    return [r["reference"] for r in refs if isinstance(r, Mapping) and isinstance(r.get("reference"), str)]


def _values(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _sort_key(param: str, descending: bool) -> Any:
    """Oldest (or newest) first by the parameter's start instant; undated resources last either way."""
    sign = -1 if descending else 1

    def key(raw: Mapping[str, Any]) -> tuple[bool, float]:
        bounds = _resource_bounds(raw, param)
        start = (bounds[0] or bounds[1]) if bounds else None
        return (start is None, sign * sort_key(start).timestamp() if start else 0.0)

    return key


class InMemoryRecordStore:
    """A ``RecordStore`` over resource dicts held in memory (a Synthea bundle, a demo record, a test record).

    Search supports ``patient``/``subject``, ``_id``, the token parameters ``code``, ``vaccine-code``, ``type``,
    ``category``, ``clinical-status``, ``status`` (``code``, ``system|code``, comma for "or"), the date
    parameters ``date``, ``onset-date``, ``authoredon``, ``recorded-date``, ``effective``, ``occurrence``,
    ``period``, ``created``, ``issued`` (prefixes eq/ne/ge/gt/le/lt; a period matches when it overlaps),
    ``_sort`` on a date parameter (``-`` for newest first), ``_count`` and ``_elements``. Anything else raises
    ``UnsupportedSearchError``. Results are copies: callers cannot change the store.
    """

    def __init__(self, resources: Iterable[Mapping[str, Any]]) -> None:
        self._by_ref: dict[str, dict[str, Any]] = {}
        for resource in resources:
            kind, rid = resource.get("resourceType"), resource.get("id")
            if isinstance(kind, str) and isinstance(rid, str):
                self._by_ref[f"{kind}/{rid}"] = dict(resource)

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, Any]) -> InMemoryRecordStore:
        """A store over a bundle's resources, with ``urn:uuid:`` and other fullUrl references rewritten to
        ``Type/id`` (Synthea transactions reference by fullUrl), as a server loading it with ids kept would."""
        entries = [
            e for e in bundle.get("entry") or [] if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
        ]
        aliases: dict[str, str] = {}
        for entry in entries:
            resource = entry["resource"]
            if isinstance(entry.get("fullUrl"), str) and resource.get("id"):
                aliases[entry["fullUrl"]] = f"{resource.get('resourceType')}/{resource['id']}"
        return cls(_rewrite_references(copy.deepcopy(dict(e["resource"])), aliases) for e in entries)

    @classmethod
    def from_bundle_file(cls, path: str | Path) -> InMemoryRecordStore:
        """``from_bundle`` over a JSON bundle file."""
        return cls.from_bundle(json.loads(Path(path).read_text(encoding="utf-8")))

    def __len__(self) -> int:
        return len(self._by_ref)

    async def patient_resources(
        self, patient_id: str, types: Sequence[str] | None = None, *, elements: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        patient = f"Patient/{patient_id}"
        found = [
            raw
            for ref, raw in self._by_ref.items()
            if (ref == patient or patient in _reference_id(raw, _PATIENT_FIELDS))
            and (types is None or raw.get("resourceType") in types)
        ]
        return [_trim(raw, elements) for raw in found]

    async def search(self, resource_type: str, params: SearchParams) -> list[dict[str, Any]]:
        found = [raw for raw in self._by_ref.values() if raw.get("resourceType") == resource_type]
        count: int | None = None
        elements: list[str] | None = None
        sorts: list[str] = []
        for name, value in params.items():
            values = _values(value)
            if name == "_count":
                count = _as_count(values)
            elif name == "_sort":
                sorts = [s.strip() for v in values for s in v.split(",") if s.strip()]
            elif name == "_elements":
                elements = [e.strip() for v in values for e in v.split(",") if e.strip()]
            else:
                found = [raw for raw in found if all(_matches(raw, name, v) for v in values)]
        for sort in reversed(sorts):
            param = sort.lstrip("-")
            if param != "date" and param not in _DATE_FIELDS:
                raise UnsupportedSearchError(f"cannot sort by {sort!r}")
            found.sort(key=_sort_key(param, sort.startswith("-")))
        return [_trim(raw, elements) for raw in found[:count]]

    async def resolve(self, reference: str) -> dict[str, Any] | None:
        parts = reference.split("/")
        if len(parts) not in (2, 4) or (len(parts) == 4 and parts[2] != "_history"):
            return None  # absolute URLs, urn: references and contained (#id) references are not ours to follow
        raw = self._by_ref.get(f"{parts[0]}/{parts[1]}")
        if raw is None or (len(parts) == 4 and str((raw.get("meta") or {}).get("versionId", parts[3])) != parts[3]):
            return None
        return copy.deepcopy(raw)


def _as_count(values: list[str]) -> int:
    try:
        count = int(values[-1])
    except ValueError as exc:
        raise UnsupportedSearchError(f"_count must be a whole number, not {values[-1]!r}") from exc
    if count < 0:
        raise UnsupportedSearchError("_count must not be negative")
    return count


def _matches(raw: Mapping[str, Any], name: str, value: str) -> bool:
    if name in ("patient", "subject"):
        wanted = value if "/" in value else f"Patient/{value}"
        return wanted in _reference_id(raw, _PATIENT_FIELDS)
    if name == "_id":
        return raw.get("id") in value.split(",")
    if name in _TOKEN_FIELDS:
        return _token_matches(raw, name, value)
    if name == "date" or name in _DATE_FIELDS:
        return _date_matches(_resource_span(raw, name), value)
    raise UnsupportedSearchError(f"search parameter {name!r} is not supported by the in-memory store")


def _trim(raw: Mapping[str, Any], elements: Sequence[str] | None) -> dict[str, Any]:
    if elements is None:
        return copy.deepcopy(dict(raw))
    keep = set(elements) | set(_ALWAYS_KEPT)
    return copy.deepcopy({k: v for k, v in raw.items() if k in keep})


def _rewrite_references(value: Any, aliases: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and item in aliases:
                value[key] = aliases[item]
            else:
                _rewrite_references(item, aliases)
    elif isinstance(value, list):
        for item in value:
            _rewrite_references(item, aliases)
    return value
