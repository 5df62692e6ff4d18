"""Small hand-written FHIR R4 resources for the records tests."""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def concept(code: str, display: str, system: str = LOINC) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": code}]}]


def lab(rid: str, code: str, name: str, value: float, when: str, unit: str = "mg/dL",
        ref: tuple[float, float] | None = None, **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"resourceType": "Observation", "id": rid, "status": "final",
                           "category": category("laboratory"), "code": concept(code, name),
                           "effectiveDateTime": when, "valueQuantity": {"value": value, "unit": unit}}
    if ref:
        raw["referenceRange"] = [{"low": {"value": ref[0]}, "high": {"value": ref[1]}}]
    raw.update(extra)
    return raw


def vital(rid: str, code: str, name: str, value: float, when: str, unit: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final", "category": category("vital-signs"),
            "code": concept(code, name), "effectiveDateTime": when, "valueQuantity": {"value": value, "unit": unit}}


def blood_pressure(rid: str, systolic: float, diastolic: float, when: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final", "category": category("vital-signs"),
            "code": concept("85354-9", "Blood pressure"), "effectiveDateTime": when,
            "component": [
                {"code": concept("8480-6", "Systolic"), "valueQuantity": {"value": systolic, "unit": "mm[Hg]"}},
                {"code": concept("8462-4", "Diastolic"), "valueQuantity": {"value": diastolic, "unit": "mm[Hg]"}},
            ]}


def condition(rid: str, code: str, name: str, status: str, onset: str, abated: str | None = None,
              **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"resourceType": "Condition", "id": rid, "code": concept(code, name, SNOMED),
                           "clinicalStatus": {"coding": [{"code": status}]}, "onsetDateTime": onset}
    if abated:
        raw["abatementDateTime"] = abated
    raw.update(extra)
    return raw


def medication(rid: str, code: str, name: str, status: str, authored: str, **extra: Any) -> dict[str, Any]:
    raw = {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
           "medicationCodeableConcept": concept(code, name, RXNORM), "authoredOn": authored}
    raw.update(extra)
    return raw


def patient(rid: str = "p1", **extra: Any) -> dict[str, Any]:
    raw = {"resourceType": "Patient", "id": rid, "name": [{"use": "official", "given": ["Ada"], "family": "Stone"}],
           "gender": "female", "birthDate": "1960-06-15"}
    raw.update(extra)
    return raw


def encounter(rid: str, start: str, kind: str = "Check up") -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": rid, "status": "finished", "class": {"code": "AMB"},
            "type": [{"text": kind}], "period": {"start": start, "end": start}}


def immunization(rid: str, code: str, name: str, when: str, status: str = "completed") -> dict[str, Any]:
    return {"resourceType": "Immunization", "id": rid, "status": status,
            "vaccineCode": concept(code, name, "http://hl7.org/fhir/sid/cvx"), "occurrenceDateTime": when}


def procedure(rid: str, name: str, when: str, status: str = "completed") -> dict[str, Any]:
    return {"resourceType": "Procedure", "id": rid, "status": status, "code": {"text": name},
            "performedDateTime": when}


def allergy(rid: str, name: str, status: str = "active") -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "id": rid, "code": {"text": name}, "criticality": "high",
            "clinicalStatus": {"coding": [{"code": status}]}, "recordedDate": "2000-01-01"}
