"""One compact, deterministic line per FHIR resource, citing its source: `[Observation/abc] 2024-03-01 HbA1c 6.1 %`.

`resource_line` never raises on malformed content: a resource without a usable resourceType or id (nothing to cite)
and billing resources (Claim, ExplanationOfBenefit) give None; an unreadable field is left out of the line.
Record text is made safe by `codes.clean`/`codes.quote`; attachment content is never read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tools.records.codes import (
    as_list,
    as_mapping,
    clean,
    concept_text,
    first_text,
    number_text,
    quantity_text,
    quote,
    status_code,
)
from tools.records.dates import When, clinical_when, day, parse_when
from tools.records.values import observation_value

_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
SKIPPED_TYPES = frozenset({"Claim", "ExplanationOfBenefit"})


@dataclass(frozen=True)
class FactLine:
    """A resource reduced to one line of text, with where it came from and when it happened."""

    reference: str  # "Type/id"
    version: str | None  # meta.versionId
    when: When | None  # the clinically relevant date (dates.CLINICAL_DATE_FIELDS)
    text: str
    resource_type: str

    def cite(self) -> str:
        """The citation a model should copy: "[Type/id]"."""
        return f"[{self.reference}]"

    @property
    def versioned_reference(self) -> str:
        """"Type/id/_history/v", or "Type/id" when the resource carried no version."""
        return f"{self.reference}/_history/{self.version}" if self.version else self.reference

    def render(self) -> str:
        """"[Type/id] 2024-03-01 text" (the date reads "undated" when there is none)."""
        return f"{self.cite()} {day(self.when)} {self.text}"


def source_of(raw: Mapping[str, Any]) -> tuple[str, str, str | None] | None:
    """(resourceType, id, versionId) when the resource can be cited; ids must be FHIR ids so no text poses as one."""
    kind, rid = raw.get("resourceType"), raw.get("id")
    if not (isinstance(kind, str) and _TYPE.fullmatch(kind) and isinstance(rid, str) and _ID.fullmatch(rid)):
        return None
    version = as_mapping(raw.get("meta")).get("versionId")
    version = clean(version, 64) if isinstance(version, str | int) and not isinstance(version, bool) else ""
    return kind, rid, (version or None)


def unique_resources(resources: Iterable[Any]) -> list[Mapping[str, Any]]:
    """The citable resources (source_of), each Type/id once: the last one seen wins (a later page or version),
    kept at its first position so that the order stays deterministic."""
    chosen: dict[tuple[str, str], Mapping[str, Any]] = {}
    for raw in resources:
        if isinstance(raw, Mapping) and (source := source_of(raw)) is not None:
            chosen[(source[0], source[1])] = raw
    return list(chosen.values())


def resource_line(raw: Mapping[str, Any]) -> FactLine | None:
    """One line describing any common resource, or None (not a citable resource, or a billing resource)."""
    if not isinstance(raw, Mapping):
        return None
    source = source_of(raw)
    if source is None or source[0] in SKIPPED_TYPES:
        return None
    kind, rid, version = source
    describe = _DESCRIBERS.get(kind, _generic)
    text = describe(raw) or kind
    return FactLine(f"{kind}/{rid}", version, clinical_when(raw), text, kind)


def _join(*parts: str | None, sep: str = "; ") -> str:
    return sep.join(p for p in parts if p)


def _with_status(head: str | None, *details: str | None) -> str:
    inside = _join(*details, sep=", ")
    return f"{head or 'unnamed'} ({inside})" if inside else (head or "unnamed")


def _notes(raw: Mapping[str, Any]) -> str | None:
    texts = [as_mapping(n).get("text") for n in as_list(raw.get("note"))]
    first = next((t for t in texts if isinstance(t, str) and clean(t)), None)
    return f"note {quote(first)}" if first else None


def _patient(raw: Mapping[str, Any]) -> str:
    name = patient_name(raw)
    deceased = raw.get("deceasedDateTime")
    dead = f"deceased {day(parse_when(deceased))}" if deceased else None
    if dead is None and raw.get("deceasedBoolean") is True:
        dead = "deceased"
    born = raw.get("birthDate")
    return _join(name or "unnamed patient", clean(raw.get("gender"), 16) or None,
                 f"born {clean(born, 10)}" if isinstance(born, str) else None, dead, sep=", ")


def patient_name(raw: Mapping[str, Any]) -> str | None:
    """The official (else first) name as "Given Family", safe to show."""
    names = [as_mapping(n) for n in as_list(raw.get("name"))]
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    if clean(chosen.get("text")):
        return clean(chosen.get("text"), 80)
    given = " ".join(clean(g, 40) for g in as_list(chosen.get("given")) if clean(g))
    return clean(f"{given} {clean(chosen.get('family'), 40)}", 80) or None


def _condition(raw: Mapping[str, Any]) -> str:
    abated = parse_when(raw.get("abatementDateTime"))
    clinical = status_code(raw.get("clinicalStatus"))
    verification = status_code(raw.get("verificationStatus"))
    if abated is not None:  # "resolved 2012-06-01" rather than "resolved, resolved 2012-06-01"
        clinical = f"{clinical or 'abated'} {day(abated)}"
    return _join(_with_status(
        concept_text(raw.get("code")), clinical, verification if verification not in (None, "confirmed") else None,
    ), _notes(raw))


def _observation(raw: Mapping[str, Any]) -> str:
    status = clean(raw.get("status"), 20)
    unusual = status if status not in ("", "final", "amended", "corrected") else None
    return _join(_join(concept_text(raw.get("code")) or "observation", observation_value(raw), sep=" "),
                 unusual, _notes(raw))


def medication_name(raw: Mapping[str, Any]) -> str | None:
    """The medication of a MedicationRequest/MedicationStatement: its concept text, else the reference's display."""
    med = concept_text(raw.get("medicationCodeableConcept"))
    if med is None:
        ref = as_mapping(raw.get("medicationReference"))
        med = clean(ref.get("display")) or clean(ref.get("reference")) or None
    return med


def dosage_text(raw: Mapping[str, Any]) -> str | None:
    """"dosage "<quoted text>"" from the first dosage with text, else one built from dose and timing."""
    dosages = as_list(raw.get("dosageInstruction")) or as_list(raw.get("dosage"))
    dose = next((d.get("text") for d in dosages if isinstance(d, Mapping) and clean(d.get("text"))), None)
    return f"dosage {quote(dose)}" if dose else _timing(dosages)


def _medication(raw: Mapping[str, Any]) -> str:
    intent = clean(raw.get("intent"), 20)
    return _join(_with_status(medication_name(raw), clean(raw.get("status"), 20),
                              intent if intent not in ("", "order") else None),
                 dosage_text(raw), _notes(raw))


def _timing(dosages: list[Any]) -> str | None:
    dosage = as_mapping(dosages[0]) if dosages else {}
    repeat = as_mapping(as_mapping(dosage.get("timing")).get("repeat"))
    freq, period, unit = repeat.get("frequency"), repeat.get("period"), clean(repeat.get("periodUnit"), 4)
    dose = next((as_mapping(d).get("doseQuantity") for d in as_list(dosage.get("doseAndRate"))), None)
    amount = quantity_text(dose)
    every = None
    if isinstance(freq, int) and isinstance(period, int | float) and not isinstance(period, bool):
        every = f"every {number_text(period)}{unit}" if freq == 1 else f"{freq}x per {number_text(period)}{unit}"
    as_needed = "as needed" if dosage.get("asNeededBoolean") is True else None
    text = _join(amount, every, as_needed, sep=", ")
    return f"dosage {text}" if text else None


def _allergy(raw: Mapping[str, Any]) -> str:
    reactions = []
    for reaction in as_list(raw.get("reaction"))[:3]:
        reaction = as_mapping(reaction)
        signs = ", ".join(first_text(as_list(reaction.get("manifestation")), 3))
        severity = clean(reaction.get("severity"), 12)
        if signs:
            reactions.append(f"{signs} ({severity})" if severity else signs)
    return _join(_with_status(
        f"allergy: {concept_text(raw.get('code')) or 'unknown substance'}",
        status_code(raw.get("clinicalStatus")),
        f"criticality {clean(raw.get('criticality'), 20)}" if clean(raw.get("criticality")) else None,
    ), f"reactions: {'; '.join(reactions)}" if reactions else None, _notes(raw))


ENCOUNTER_CLASSES = {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient", "ACUTE": "inpatient acute",
                     "NONAC": "inpatient non-acute", "OBSENC": "observation", "PRENC": "pre-admission",
                     "SS": "short stay", "VR": "virtual", "HH": "home health", "FLD": "field"}


def _encounter(raw: Mapping[str, Any]) -> str:
    cls = as_mapping(raw.get("class"))
    code = clean(cls.get("code"), 16)
    label = clean(cls.get("display"), 40) or ENCOUNTER_CLASSES.get(code, code)
    kinds = ", ".join(first_text(as_list(raw.get("type")), 2))
    reasons = ", ".join(first_text(as_list(raw.get("reasonCode")), 3))
    period = as_mapping(raw.get("period"))
    start, end = parse_when(period.get("start")), parse_when(period.get("end"))
    until = f"until {day(end)}" if end and day(end) != day(start) else None  # same-day visits need no end
    return _join(_with_status(_join(f"{label} encounter" if label else "encounter", kinds, sep=": "),
                              clean(raw.get("status"), 20), until),
                 f"reason {reasons}" if reasons else None)


def _procedure(raw: Mapping[str, Any]) -> str:
    reasons = ", ".join(first_text(as_list(raw.get("reasonCode")), 3))
    return _join(_with_status(concept_text(raw.get("code")), clean(raw.get("status"), 20)),
                 f"reason {reasons}" if reasons else None, _notes(raw))


def _immunization(raw: Mapping[str, Any]) -> str:
    return _with_status(concept_text(raw.get("vaccineCode")), clean(raw.get("status"), 20))


def _report(raw: Mapping[str, Any]) -> str:
    results = len(as_list(raw.get("result")))
    conclusion = raw.get("conclusion")
    return _join(_with_status(concept_text(raw.get("code")), clean(raw.get("status"), 20),
                              f"{results} results" if results else None),
                 f"conclusion {quote(conclusion)}" if clean(conclusion) else None)


def _care_plan(raw: Mapping[str, Any]) -> str:
    title = raw.get("title")
    head = quote(title, 80) if clean(title) else ", ".join(first_text(as_list(raw.get("category")), 2)) or None
    activities = [as_mapping(as_mapping(a).get("detail")).get("code") for a in as_list(raw.get("activity"))]
    planned = ", ".join(first_text(activities, 3))
    return _join(_with_status(f"care plan {head}" if head else "care plan", clean(raw.get("status"), 20)),
                 f"activities: {planned}" if planned else None)


def _device(raw: Mapping[str, Any]) -> str:
    names = [as_mapping(n).get("name") for n in as_list(raw.get("deviceName"))]
    name = concept_text(raw.get("type")) or next((clean(n) for n in names if clean(n)), None)
    udi = next((clean(as_mapping(u).get("deviceIdentifier"), 40) for u in as_list(raw.get("udiCarrier"))), None)
    return _join(_with_status(f"device {name}" if name else "device", clean(raw.get("status"), 20)),
                 f"UDI {udi}" if udi else None)


def _imaging(raw: Mapping[str, Any]) -> str:
    series = [as_mapping(s) for s in as_list(raw.get("series"))]
    modalities = ", ".join(first_text([s.get("modality") for s in series], 3))
    sites = ", ".join(first_text([s.get("bodySite") for s in series], 3))
    what = ", ".join(first_text(as_list(raw.get("procedureCode")), 2)) or sites
    counts = [f"{raw[k]} {label}" for k, label in (("numberOfSeries", "series"), ("numberOfInstances", "instances"))
              if isinstance(raw.get(k), int) and not isinstance(raw.get(k), bool)]
    return _with_status(_join(f"{modalities or 'imaging'} study", what, sep=": "), clean(raw.get("status"), 20),
                        *counts)


def _document(raw: Mapping[str, Any]) -> str:
    # Attachment content (and the free-text description) stays out: only what kind of document and when.
    kind = concept_text(raw.get("type")) or ", ".join(first_text(as_list(raw.get("category")), 1)) or None
    return _with_status(f"document {kind}" if kind else "document", clean(raw.get("status"), 20))


def _generic(raw: Mapping[str, Any]) -> str:
    kind = clean(raw.get("resourceType"), 64)
    for field in ("code", "type", "vaccineCode", "category", "description"):
        value = raw.get(field)
        text = ", ".join(first_text(value, 2)) if isinstance(value, list) else concept_text(value)
        if text:
            return _with_status(f"{kind} {text}", clean(raw.get("status"), 20))
    name = raw.get("name")
    shown = clean(name) if isinstance(name, str) else None
    return _with_status(f"{kind} {quote(shown, 80)}" if shown else kind, clean(raw.get("status"), 20))


_DESCRIBERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "Patient": _patient, "Condition": _condition, "Observation": _observation,
    "MedicationRequest": _medication, "MedicationStatement": _medication, "AllergyIntolerance": _allergy,
    "Encounter": _encounter, "Procedure": _procedure, "Immunization": _immunization,
    "DiagnosticReport": _report, "CarePlan": _care_plan, "Device": _device, "ImagingStudy": _imaging,
    "DocumentReference": _document,
}
