"""The fetch plan: which resource types (and codes, and dates) to fetch for a question.

The model writes the plan; nothing it writes is used unchecked. ``parse_plan`` reads the reply tolerantly (a JSON
object anywhere, ``{"types": [...]}`` or ``{"fetches": [...]}``, a bare list, type names in prose) and
``validate_plan`` keeps only what the patient's catalog (type -> code -> display, from the manifest) allows: known
types, codes the patient has (a display the model wrote instead is mapped to its code), dates as ISO days. So a
reply can narrow what is fetched but cannot name a URL, a foreign type, or a parameter: the graph builds the
search parameters itself. ``keyword_plan`` is the deterministic plan used when the model's plan is unusable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.json_objects import close_truncated, load_object, scan_objects

__all__ = [
    "MAX_FETCHES",
    "Catalog",
    "FetchPlan",
    "PlanParse",
    "PlannedFetch",
    "keyword_plan",
    "parse_plan",
    "plan_json_schema",
    "shared_words",
    "significant_words",
    "validate_plan",
]

# Types per question; a question needing more is better served by the model-free snapshot.
MAX_FETCHES = 5
MAX_CODES = 8

Catalog = Mapping[str, Mapping[str, str]]  # resource type -> code -> display, what this patient's record holds


class PlannedFetch(BaseModel):
    """One search: a resource type, optionally narrowed to codes and to a date range inside the question's window."""

    model_config = ConfigDict(frozen=True)

    resource_type: str = Field(description="A FHIR resource type from the manifest, e.g. Observation.")
    codes: list[str] = Field(default_factory=list, description="Codes from the manifest to narrow to; [] for all.")
    start: date | None = Field(default=None, description="First day to include (YYYY-MM-DD), or null.")
    end: date | None = Field(default=None, description="Last day to include (YYYY-MM-DD), or null.")


class FetchPlan(BaseModel):
    """The searches to run for one question, at most ``MAX_FETCHES``."""

    model_config = ConfigDict(frozen=True)

    fetches: list[PlannedFetch] = Field(default_factory=list, max_length=MAX_FETCHES)

    @property
    def types(self) -> list[str]:
        return [f.resource_type for f in self.fetches]


def plan_json_schema() -> dict[str, Any]:
    """The plan's JSON Schema, passed as ``json_schema`` (constrained decoding, or a stop at the closing brace)."""
    return FetchPlan.model_json_schema()


@dataclass(frozen=True)
class PlanParse:
    """A validated plan, or None with the reason the reply could not be used."""

    plan: FetchPlan | None
    reason: str


_TYPE_KEYS = ("resource_type", "resourceType", "type", "resource", "name")
_LIST_KEYS = ("fetches", "types", "resource_types", "resources", "plan", "fetch", "searches")


def _items(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        for key in _LIST_KEYS:
            if isinstance(value.get(key), list):
                return list(value[key])
        if any(k in value for k in _TYPE_KEYS):
            return [value]
        return []
    return list(value) if isinstance(value, list) else []


def _as_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _match_type(name: Any, catalog: Catalog) -> str | None:
    if not isinstance(name, str):
        return None
    wanted = name.strip().lower().rstrip("s")
    return next((t for t in catalog if t.lower() == wanted or t.lower().rstrip("s") == wanted), None)


def _match_codes(values: Any, known: Mapping[str, str]) -> list[str]:
    """Codes the patient has, read from codes, ``system|code`` tokens or displays; anything else is dropped."""
    raw = values if isinstance(values, list) else [values] if values else []
    by_display = {display.strip().lower(): code for code, display in known.items() if display}
    codes: list[str] = []
    for value in raw:
        if isinstance(value, Mapping):
            value = value.get("code") or value.get("display")
        if not isinstance(value, str):
            continue
        text = value.strip()
        token = text.split("|")[-1].strip(" ()")  # "system|code", or a manifest line "Display (system|code)"
        code = text if text in known else token if token in known else None
        code = code or by_display.get(text.lower())
        if code and code not in codes:
            codes.append(code)
    return codes[:MAX_CODES]


def validate_plan(value: Any, catalog: Catalog) -> FetchPlan:
    """The part of a parsed reply the catalog allows (possibly no fetches at all)."""
    fetches: dict[str, PlannedFetch] = {}
    for item in _items(value):
        entry: Mapping[str, Any] = item if isinstance(item, Mapping) else {"resource_type": item}
        kind = _match_type(next((entry[k] for k in _TYPE_KEYS if k in entry), None), catalog)
        if kind is None or kind in fetches:
            continue
        codes = _match_codes(entry.get("codes", entry.get("code")), catalog[kind])
        start, end = _as_date(entry.get("start")), _as_date(entry.get("end"))
        fetches[kind] = PlannedFetch(resource_type=kind, codes=codes, start=start, end=end)
    return FetchPlan(fetches=list(fetches.values())[:MAX_FETCHES])


def parse_plan(reply: str, catalog: Catalog) -> PlanParse:
    """Read the model's plan from ``reply``: the first JSON value with a usable fetch, else type names in prose."""
    text = reply.strip()
    if not text:
        return PlanParse(None, "empty reply")
    candidates: list[Any] = []
    for start, end, complete in scan_objects(text[:20_000]):
        obj = load_object(text[start:end]) if complete else close_truncated(text[start:end])
        if obj is not None:
            candidates.append(obj)
    bracket = re.search(r"\[[^\[\]]*\]", text)
    if bracket:
        candidates.append(load_object('{"types": ' + bracket.group(0) + "}"))
    for candidate in candidates:
        plan = validate_plan(candidate, catalog)
        if plan.fetches:
            return PlanParse(plan, "json")
    named = [t for t in catalog if re.search(rf"\b{re.escape(t)}s?\b", text)]
    if named:
        return PlanParse(validate_plan(named, catalog), "type names in prose")
    if candidates:
        return PlanParse(None, "no resource type of this record in the reply")
    return PlanParse(None, "no JSON plan in the reply")


# Words of a question -> the resource types that answer it. Read as substrings of the lower-cased question.
KEYWORD_TYPES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("allerg", "reaction to", "intoleran"), ("AllergyIntolerance",)),
    (("medic", "drug", "prescri", "taking", "dose", "dosage", "pill", "tablet", "inhaler", "insulin"),
     ("MedicationRequest", "MedicationStatement")),
    (("vaccin", "immuni", "shot", "booster"), ("Immunization",)),
    (("lab", "test", "result", "level", "value", "a1c", "glucose", "cholesterol", "hemoglobin", "haemoglobin",
      "creatinine", "blood pressure", "weight", "height", "bmi", "heart rate", "pulse", "temperature", "vital",
      "measure", "reading"), ("Observation",)),
    (("report", "panel", "imaging", "scan", "x-ray", "xray"), ("DiagnosticReport",)),
    (("condition", "diagnos", "problem", "disease", "history", "illness", "disorder", "suffer"), ("Condition",)),
    (("procedure", "surgery", "operation", "surgical", "biopsy"), ("Procedure",)),
    (("visit", "encounter", "admi", "hospital", "appointment", "emergency", "seen"), ("Encounter",)),
    (("care plan", "careplan", "treatment plan"), ("CarePlan",)),
    (("document", "note", "letter"), ("DocumentReference",)),
)
DEFAULT_TYPES = ("Condition", "MedicationRequest", "Observation", "AllergyIntolerance")
# Words too common in lab names to pick a code by ("blood" is in half of them).
_GENERIC_WORDS = frozenset(
    [
        "blood", "serum", "plasma", "urine", "total", "level", "levels", "test", "tests", "result", "results",
        "value", "values", "latest", "recent", "last", "most", "what", "when", "which", "patient", "patients",
        "their", "have", "has", "does", "with", "from", "since", "before", "after", "during", "count", "mass",
        "volume", "in", "of", "the", "and", "or", "by", "per", "her", "his", "she", "him", "did", "was", "are",
        "how", "any", "been", "ever", "for", "you", "your", "this", "that", "show", "list", "tell", "give", "get",
        "had", "were", "does",
    ]
)


def significant_words(text: str) -> set[str]:
    """The words of ``text`` that can tell one code from another (lower case, 3+ letters, not generic)."""
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 3 and w not in _GENERIC_WORDS}


def _same_word(a: str, b: str) -> bool:
    # "hba1c" names "A1c", "allergies" names "allergy": one word starting or ending the other, singular or plural.
    a, b = a.removesuffix("s"), b.removesuffix("s")
    short, long = sorted((a, b), key=len)
    short = short.removesuffix("ie")
    return len(short) >= 3 and (long.startswith(short) or long.endswith(short))


def shared_words(first: set[str], second: set[str]) -> int:
    """How many words of ``first`` name a word of ``second`` (see ``_same_word``)."""
    return sum(any(_same_word(a, b) for b in second) for a in first)


def keyword_plan(question: str, catalog: Catalog) -> FetchPlan:
    """A plan without the model: types from ``KEYWORD_TYPES``, codes whose display shares a rare word with the
    question (so "latest A1c" narrows to the HbA1c code); types the record lacks are skipped."""
    text = question.lower()
    wanted: list[str] = []
    for words, kinds in KEYWORD_TYPES:
        if any(w in text for w in words):
            wanted.extend(k for k in kinds if k not in wanted)
    wanted = [k for k in wanted if k in catalog] or [k for k in DEFAULT_TYPES if k in catalog]
    if not wanted:
        wanted = list(catalog)[:MAX_FETCHES]
    question_words = significant_words(question)
    fetches = []
    for kind in wanted[:MAX_FETCHES]:
        named = catalog[kind].items()
        codes = [code for code, display in named if shared_words(question_words, significant_words(display))]
        fetches.append(PlannedFetch(resource_type=kind, codes=codes[:MAX_CODES]))
    return FetchPlan(fetches=fetches)


def render_plan_example(types: Sequence[str]) -> str:
    """A one-line example plan over this record's own types (small models copy the example's shape)."""
    first = types[0] if types else "Observation"
    return '{"fetches": [{"resource_type": "' + first + '", "codes": [], "start": null, "end": null}]}'
