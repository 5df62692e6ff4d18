"""Small FHIR R4 JSON builders for the demo records: codes, quantities, references and the resource shapes.

Pure functions over plain dicts (what a server sends and stores); ``simulations.demo_records`` decides the content.
"""

from __future__ import annotations

import uuid
from typing import Any

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
OBSERVATION_CATEGORY = TERMINOLOGY + "observation-category"
INTERPRETATION = TERMINOLOGY + "v3-ObservationInterpretation"
DEMO_TAG = {
    "system": "https://clinicflow.example/fhir/tags",
    "code": "demo",
    "display": "clinicflow demo record (synthetic)",
}

_CATEGORY_DISPLAY = {
    "laboratory": "Laboratory",
    "vital-signs": "Vital Signs",
    "social-history": "Social History",
    "procedure": "Procedure",
    "exam": "Exam",
}
_INTERPRETATION_DISPLAY = {"H": "High", "L": "Low", "N": "Normal"}

JsonDict = dict[str, Any]

# LOINC code, display and UCUM unit of each vital sign the demo facts may give
VITAL_SIGNS: dict[str, tuple[str, str, str]] = {
    "heart_rate": ("8867-4", "Heart rate", "/min"),
    "respiratory_rate": ("9279-1", "Respiratory rate", "/min"),
    "temperature": ("8310-5", "Body temperature", "Cel"),
    "oxygen_saturation": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    "weight": ("29463-7", "Body weight", "kg"),
    "height": ("8302-2", "Body height", "cm"),
    "head_circumference": ("9843-4", "Head Occipital-frontal circumference", "cm"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2"),
}
# SNOMED CT code and display of each visit type, and of each smoking status (LOINC 72166-2 answers)
ENCOUNTER_TYPES = {
    "checkup": ("185349003", "Encounter for check up"),
    "follow-up": ("390906007", "Follow-up encounter"),
    "symptom": ("185345009", "Encounter for symptom"),
    "well-child": ("410620009", "Well child visit"),
}
SMOKING_STATUS = {
    "current": ("449868002", "Smokes tobacco daily"),
    "former": ("8517006", "Ex-smoker"),
    "never": ("266919005", "Never smoked tobacco"),
}
# fullUrls of the demo bundles' entries: stable uuids derived from Type/id
_ENTRY_NAMESPACE = uuid.UUID("5f2b8a64-1c3e-5b7d-9e0f-a1b2c3d4e5f6")


def coding(system: str, code: str, display: str | None = None) -> JsonDict:
    out: JsonDict = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str, text: str | None = None) -> JsonDict:
    return {"coding": [coding(system, code, display)], "text": text or display}


def status_concept(system: str, code: str) -> JsonDict:
    return {"coding": [coding(system, code)]}


def reference(rtype: str, rid: str, display: str | None = None) -> JsonDict:
    out: JsonDict = {"reference": f"{rtype}/{rid}"}
    if display:
        out["display"] = display
    return out


def quantity(value: float, unit: str) -> JsonDict:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def age(years: float) -> JsonDict:
    return {"value": years, "unit": "years", "system": UCUM, "code": "a"}


def component(system: str, code: str, display: str, value: JsonDict) -> JsonDict:
    return {"code": concept(system, code, display), "valueQuantity": value}


def transaction_bundle(resources: list[JsonDict]) -> JsonDict:
    """A transaction of ``PUT Type/id`` entries: loading it twice leaves the same resources under the same ids."""
    entries = []
    for resource in resources:
        key = f"{resource['resourceType']}/{resource['id']}"
        entries.append({
            "fullUrl": f"urn:uuid:{uuid.uuid5(_ENTRY_NAMESPACE, key)}",
            "resource": resource,
            "request": {"method": "PUT", "url": key},
        })
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def base(rtype: str, rid: str) -> JsonDict:
    """The common head of every demo resource: type, id and the demo tag (so a user can find and delete them)."""
    return {"resourceType": rtype, "id": rid, "meta": {"tag": [dict(DEMO_TAG)]}}


def category(code: str) -> list[JsonDict]:
    return [{"coding": [coding(OBSERVATION_CATEGORY, code, _CATEGORY_DISPLAY.get(code, code))]}]


def interpretation(value: float, low: float | None, high: float | None) -> list[JsonDict]:
    flag = "L" if low is not None and value < low else "H" if high is not None and value > high else "N"
    display = _INTERPRETATION_DISPLAY[flag]
    return [{"coding": [coding(INTERPRETATION, flag, display)], "text": display}]


def reference_range(low: float | None, high: float | None, unit: str) -> list[JsonDict]:
    if low is None and high is None:
        return []
    rng: JsonDict = {}
    if low is not None:
        rng["low"] = quantity(low, unit)
    if high is not None:
        rng["high"] = quantity(high, unit)
    return [rng]


def observation(
    rid: str,
    patient: JsonDict,
    *,
    cat: str,
    code: JsonDict,
    when: str,
    encounter: JsonDict | None = None,
    value: JsonDict | None = None,
    components: list[JsonDict] | None = None,
    low: float | None = None,
    high: float | None = None,
    issued: str | None = None,
) -> JsonDict:
    """An Observation; ``low``/``high`` add a reference range and an interpretation for a quantity value."""
    obs = base("Observation", rid) | {"status": "final", "category": category(cat), "code": code, "subject": patient}
    if encounter:
        obs["encounter"] = encounter
    obs["effectiveDateTime"] = when
    if issued:
        obs["issued"] = issued
    if value is not None:
        obs["valueQuantity" if "value" in value else "valueCodeableConcept"] = value
        if "value" in value and (low is not None or high is not None):
            obs["interpretation"] = interpretation(value["value"], low, high)
            obs["referenceRange"] = reference_range(low, high, value["unit"])
    if components:
        obs["component"] = components
    return obs
