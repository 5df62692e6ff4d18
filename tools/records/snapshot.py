"""A patient's clinical snapshot computed without a model: demographics, problems, medications, allergies,
latest vitals, lab trends, encounters, procedures and immunizations, every item citing its source.

How each section is filled (and counted by `Snapshot.counts`), over `lines.unique_resources(resources)`, i.e.
resources with a FHIR resourceType and id, one per Type/id; "void" means `codes.is_void` (status entered-in-error,
cancelled or not-done, or verificationStatus entered-in-error or refuted); a "key" is `codes.concept_key`
("system|code" of the first coding that has a code, else "text:<lowercased text>"); resources without a key are
left out of keyed sections:

- demographics: 1 when there is a Patient (the first one is used), else 0.
- allergies: AllergyIntolerance, not void, clinicalStatus not inactive/resolved; one item each.
- active_problems: distinct keys of Condition.code over non-void Conditions whose clinicalStatus is active,
  recurrence or relapse (no clinicalStatus: active unless an abatement[x] is present); one item per key, from
  its most recent Condition.
- resolved_problems: the same for clinicalStatus resolved, inactive or remission (or no status and an
  abatement[x]), leaving out keys that are also active.
- medications: distinct medication keys (medicationCodeableConcept key, else "ref:" + medicationReference
  reference or display) over non-void MedicationRequest and MedicationStatement with status "active".
- vitals: distinct keys of Observation.code over non-void Observations with category code "vital-signs";
  the item is the latest of each.
- labs: distinct keys over lab Observations (`trends.is_lab`: category code "laboratory", not void), one
  LabTrend each; lab_values: the number of those Observations.
- encounters, procedures: non-void Encounters / Procedures, one item each, most recent first.
- immunizations: distinct keys of Immunization.vaccineCode over non-void Immunizations; item: the latest.

Items inside a section are ordered most recent first (by dates.sort_key of their as-of date, then source).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from tools.records.codes import as_mapping, concept_key, concept_text, in_category, is_void, status_code
from tools.records.dates import When, age_on, clinical_when, day, parse_when, sort_key
from tools.records.lines import dosage_text, medication_name, patient_name, resource_line, source_of, unique_resources
from tools.records.trends import LabTrend, LabValue, lab_trends
from tools.records.values import observation_value

ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
RESOLVED_CONDITION = frozenset({"resolved", "inactive", "remission"})
INACTIVE_ALLERGY = frozenset({"inactive", "resolved"})
SECTIONS = ("demographics", "allergies", "active_problems", "medications", "vitals", "labs", "lab_values",
            "encounters", "procedures", "immunizations", "resolved_problems")


@dataclass(frozen=True)
class SnapshotItem:
    """One fact of the snapshot: text without date or citation, its source and the date it holds as of."""

    section: str
    text: str
    source: str  # "Type/id"
    version: str | None
    as_of: When | None

    @property
    def versioned_source(self) -> str:
        """"Type/id/_history/v", or "Type/id" when the source carried no version."""
        return f"{self.source}/_history/{self.version}" if self.version else self.source

    def cite(self) -> str:
        """"[Type/id]"."""
        return f"[{self.source}]"


@dataclass(frozen=True)
class Demographics:
    """Who the patient is; `age` in whole years at death, else at the snapshot's as_of."""

    name: str | None
    gender: str | None
    birth_date: date | None
    age: int | None
    deceased: bool
    deceased_at: When | None
    item: SnapshotItem


@dataclass(frozen=True)
class Snapshot:
    """The computed snapshot (module docstring for what each section holds)."""

    demographics: Demographics | None
    allergies: tuple[SnapshotItem, ...]
    active_problems: tuple[SnapshotItem, ...]
    resolved_problems: tuple[SnapshotItem, ...]
    medications: tuple[SnapshotItem, ...]
    vitals: tuple[SnapshotItem, ...]
    labs: tuple[LabTrend, ...]
    encounters: tuple[SnapshotItem, ...]
    procedures: tuple[SnapshotItem, ...]
    immunizations: tuple[SnapshotItem, ...]
    as_of: When | None  # `now` when given, else the latest clinical date among the resources
    now: datetime | None = field(default=None)

    def counts(self) -> dict[str, int]:
        """Items per section, keyed as in SECTIONS (definitions in the module docstring)."""
        sizes = {name: len(getattr(self, name)) for name in SECTIONS if name not in ("demographics", "lab_values")}
        sizes["demographics"] = 1 if self.demographics else 0
        sizes["lab_values"] = sum(len(t.values) for t in self.labs)
        return {name: sizes[name] for name in SECTIONS}

    def lab_items(self) -> list[SnapshotItem]:
        """Every lab value as an item: section "labs" for each test's latest, "lab_history" for older ones."""
        return [lab_item(trend, index) for trend in self.labs for index in range(len(trend.values))]

    def items(self) -> list[SnapshotItem]:
        """Every item of every section, lab values included, demographics first."""
        head = [self.demographics.item] if self.demographics else []
        return [*head, *self.allergies, *self.active_problems, *self.medications, *self.vitals, *self.lab_items(),
                *self.encounters, *self.procedures, *self.immunizations, *self.resolved_problems]


def lab_value_text(value: LabValue) -> str:
    """"6.1 % (ref 4-5.6) high up": value, range, interpretation and direction, without the test's name."""
    details = [value.text, f"({value.reference_range})" if value.reference_range else None,
               value.interpretation, value.direction]
    return " ".join(d for d in details if d)


def lab_item(trend: LabTrend, index: int) -> SnapshotItem:
    """The index-th value of a trend as an item ("labs" for the latest, "lab_history" for older ones)."""
    value = trend.values[index]
    return SnapshotItem("labs" if index == 0 else "lab_history", f"{trend.name} {lab_value_text(value)}",
                        value.source, value.version, value.when)


def build_snapshot(resources: Iterable[Mapping[str, Any]], *, now: datetime | None = None) -> Snapshot:
    """The snapshot of one patient's resources; `now` fixes as_of (and so the age), else the latest date seen."""
    chosen = unique_resources(resources)
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for raw in chosen:
        by_type.setdefault(str(raw["resourceType"]), []).append(raw)
    latest = max((w for raw in chosen if (w := clinical_when(raw)) is not None), key=sort_key, default=None)
    as_of: When | None = now if now is not None else latest
    active, resolved = _problems(by_type.get("Condition", []))
    return Snapshot(
        demographics=_demographics(by_type.get("Patient", []), as_of),
        allergies=_each("allergies", by_type.get("AllergyIntolerance", []), _is_current_allergy),
        active_problems=active,
        resolved_problems=resolved,
        medications=_medications(by_type.get("MedicationRequest", []) + by_type.get("MedicationStatement", [])),
        vitals=_latest_per_key("vitals", [o for o in by_type.get("Observation", []) if _is_vital(o)], "code",
                               lambda raw, _: _vital_text(raw)),
        labs=tuple(lab_trends(by_type.get("Observation", []))),
        encounters=_each("encounters", by_type.get("Encounter", []), lambda raw: True),
        procedures=_each("procedures", by_type.get("Procedure", []), lambda raw: True),
        immunizations=_latest_per_key("immunizations", by_type.get("Immunization", []), "vaccineCode",
                                      _immunization_text),
        as_of=as_of, now=now,
    )


def _item(section: str, raw: Mapping[str, Any], text: str, as_of: When | None = None) -> SnapshotItem:
    kind, rid, version = source_of(raw) or ("", "", None)
    return SnapshotItem(section, text, f"{kind}/{rid}", version, as_of if as_of is not None else clinical_when(raw))


def _recent_first(items: Iterable[SnapshotItem]) -> tuple[SnapshotItem, ...]:
    ordered = sorted(items, key=lambda i: i.source)
    return tuple(sorted(ordered, key=lambda i: sort_key(i.as_of), reverse=True))


def _each(section: str, resources: list[Mapping[str, Any]],
          keep: Callable[[Mapping[str, Any]], bool]) -> tuple[SnapshotItem, ...]:
    chosen = [raw for raw in resources if not is_void(raw) and keep(raw)]
    return _recent_first(_item(section, raw, line.text) for raw in chosen if (line := resource_line(raw)))


def _newest(resources: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    return max(resources, key=lambda raw: (sort_key(clinical_when(raw)), str(raw.get("id"))))


def _latest_per_key(section: str, resources: list[Mapping[str, Any]], field_name: str,
                    describe: Callable[[Mapping[str, Any], int], str]) -> tuple[SnapshotItem, ...]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for raw in resources:
        key = concept_key(raw.get(field_name))
        if key is not None and not is_void(raw):
            groups.setdefault(key, []).append(raw)
    return _recent_first(_item(section, _newest(group), describe(_newest(group), len(group)))
                         for group in groups.values())


def _is_vital(raw: Mapping[str, Any]) -> bool:
    return in_category(raw, "vital-signs")


def _vital_text(raw: Mapping[str, Any]) -> str:
    return " ".join(p for p in (concept_text(raw.get("code")), observation_value(raw)) if p)


def _immunization_text(raw: Mapping[str, Any], doses: int) -> str:
    name = concept_text(raw.get("vaccineCode")) or "vaccine"
    return f"{name} ({doses} doses, latest shown)" if doses > 1 else name


def _is_current_allergy(raw: Mapping[str, Any]) -> bool:
    return status_code(raw.get("clinicalStatus")) not in INACTIVE_ALLERGY


def _condition_state(raw: Mapping[str, Any]) -> str | None:
    status = status_code(raw.get("clinicalStatus"))
    if status is None:
        abated = any(key.startswith("abatement") for key in raw)
        return "resolved" if abated else "active"
    return "active" if status in ACTIVE_CONDITION else "resolved" if status in RESOLVED_CONDITION else None


def _problems(conditions: list[Mapping[str, Any]]) -> tuple[tuple[SnapshotItem, ...], tuple[SnapshotItem, ...]]:
    groups: dict[str, dict[str, list[Mapping[str, Any]]]] = {"active": {}, "resolved": {}}
    for raw in conditions:
        key, state = concept_key(raw.get("code")), _condition_state(raw)
        if key is not None and state is not None and not is_void(raw):
            groups[state].setdefault(key, []).append(raw)
    active = [_problem_item("active_problems", group, None) for group in groups["active"].values()]
    resolved = [_problem_item("resolved_problems", group, parse_when(_newest(group).get("abatementDateTime")))
                for key, group in groups["resolved"].items() if key not in groups["active"]]
    return _recent_first(active), _recent_first(resolved)


def _problem_item(section: str, group: list[Mapping[str, Any]], abated: When | None) -> SnapshotItem:
    newest = _newest(group)
    name = concept_text(newest.get("code")) or "condition"
    details = [f"onset {day(clinical_when(newest))}" if abated else None,
               f"{len(group)} episodes" if len(group) > 1 else None]
    inside = ", ".join(d for d in details if d)
    return _item(section, newest, f"{name} ({inside})" if inside else name, abated)


def _medication_key(raw: Mapping[str, Any]) -> str | None:
    key = concept_key(raw.get("medicationCodeableConcept"))
    if key is None:
        ref = as_mapping(raw.get("medicationReference"))
        target = ref.get("reference") or ref.get("display")
        key = f"ref:{target}" if isinstance(target, str) and target else None
    return key


def _medications(resources: list[Mapping[str, Any]]) -> tuple[SnapshotItem, ...]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for raw in resources:
        key = _medication_key(raw)
        if key is not None and raw.get("status") == "active" and not is_void(raw):
            groups.setdefault(key, []).append(raw)
    items = []
    for group in groups.values():
        newest = _newest(group)
        text = "; ".join(p for p in (medication_name(newest) or "medication", dosage_text(newest)) if p)
        items.append(_item("medications", newest, text))
    return _recent_first(items)


def _demographics(patients: list[Mapping[str, Any]], as_of: When | None) -> Demographics | None:
    if not patients:
        return None
    raw = patients[0]
    birth = parse_when(raw.get("birthDate"))
    birth_day = birth.date() if isinstance(birth, datetime) else birth
    died = parse_when(raw.get("deceasedDateTime"))
    deceased = died is not None or raw.get("deceasedBoolean") is True
    reference_day = died if died is not None else as_of
    age = age_on(birth_day, reference_day) if birth_day and reference_day and not (deceased and died is None) else None
    gender = raw.get("gender") if isinstance(raw.get("gender"), str) else None
    line = resource_line(raw)
    text = (line.text if line else "patient") + (f", age {age}" if age is not None else "")
    item = _item("demographics", raw, text, as_of)
    return Demographics(patient_name(raw), gender, birth_day, age, deceased, died, item)
