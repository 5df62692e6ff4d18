"""FHIR date, dateTime and instant values: parsing, the clinically relevant date of a resource, sort keys.

Nothing here raises on malformed input: a value that is not a FHIR date reads as None.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

When = datetime | date

# The field that says when a resource happened clinically, per type, most specific first. A period counts by
# its start because that is when the event began (an encounter, a care plan, a procedure).
CLINICAL_DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "Patient": ("birthDate",),
    "Condition": ("onsetDateTime", "onsetPeriod", "recordedDate", "abatementDateTime"),
    "Observation": ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"),
    "MedicationRequest": ("authoredOn",),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod", "dateAsserted"),
    "AllergyIntolerance": ("onsetDateTime", "recordedDate", "lastOccurrence"),
    "Encounter": ("period",),
    "Procedure": ("performedDateTime", "performedPeriod"),
    "Immunization": ("occurrenceDateTime", "recorded"),
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod", "issued"),
    "CarePlan": ("period", "created"),
    "Device": ("manufactureDate",),
    "ImagingStudy": ("started",),
    "DocumentReference": ("date", "context.period"),
    "Claim": ("billablePeriod", "created"),
    "ExplanationOfBenefit": ("billablePeriod", "created"),
    "Goal": ("startDate", "statusDate"),
}
# Tried, in order, for a type not listed above.
GENERIC_DATE_FIELDS: tuple[str, ...] = (
    "effectiveDateTime", "effectivePeriod", "occurrenceDateTime", "performedDateTime", "performedPeriod",
    "authoredOn", "onsetDateTime", "period", "started", "issued", "recordedDate", "date", "created",
)

_EPOCH = datetime.min.replace(tzinfo=UTC)


def parse_when(value: Any) -> When | None:
    """A FHIR date ("2024", "2024-03", "2024-03-01") as a date, a dateTime or instant as an aware datetime.

    Partial dates fall on the first of the month or year; a dateTime without an offset is taken as UTC so that
    all values compare. Anything else (wrong type, garbage) is None.
    """
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        if "T" not in text:
            parts = text.split("-")
            if len(parts) == 1:
                return date(int(parts[0]), 1, 1)
            if len(parts) == 2:
                return date(int(parts[0]), int(parts[1]), 1)
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def field_when(raw: Mapping[str, Any], path: str) -> When | None:
    """The date at a dotted path; a Period (or any object with start/end) gives its start, else its end."""
    value: Any = raw
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if isinstance(value, Mapping):
        return parse_when(value.get("start")) or parse_when(value.get("end"))
    return parse_when(value)


def clinical_when(raw: Mapping[str, Any]) -> When | None:
    """When the resource happened clinically (see CLINICAL_DATE_FIELDS), or None when it carries no date."""
    fields = CLINICAL_DATE_FIELDS.get(str(raw.get("resourceType")), GENERIC_DATE_FIELDS)
    for path in fields:
        found = field_when(raw, path)
        if found is not None:
            return found
    return None


def sort_key(when: When | None) -> datetime:
    """A comparable instant: dates at midnight UTC, None before everything."""
    if when is None:
        return _EPOCH
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime(when.year, when.month, when.day, tzinfo=UTC)


def day(when: When | None) -> str:
    """The calendar day as YYYY-MM-DD, or "undated"."""
    if when is None:
        return "undated"
    return (when.date() if isinstance(when, datetime) else when).isoformat()


def age_on(birth: date, on: When) -> int:
    """Whole years from birth to the given day."""
    target = on.date() if isinstance(on, datetime) else on
    return target.year - birth.year - ((target.month, target.day) < (birth.month, birth.day))
