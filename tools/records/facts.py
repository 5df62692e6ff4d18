"""The facts a contraindication check needs, read from a patient's FHIR R4 resources without a model.

``patient_facts`` returns a plain JSON-friendly dict whose keys are the fields of the panel's ``PatientFacts``
(tools never import agents, so the dict is the contract):

- ``conditions``: ``[text, source]`` per current Condition (not void, i.e. not refuted or entered in error; clinical
  status active, recurrence or relapse, or no status and no abatement), one per concept, the newest.
- ``allergies``: ``[text, source]`` per current AllergyIntolerance (not void, not inactive or resolved): the
  substance, then its reactions ("Iodinated contrast media (reaction: urticaria, anaphylaxis)").
- ``medications``: ``[text, source]`` per MedicationRequest / MedicationStatement with status active, on-hold or
  intended (a held anticoagulant still matters when planning a biopsy), one per medication, the newest.
- ``devices``: ``[text, source]`` per Device that is not inactive or entered in error.
- ``labs``: ``{name: [value, unit, source]}``, the latest numeric value of each of ``eGFR``, ``creatinine``,
  ``platelets`` and ``INR`` (matched by LOINC code, else by the test's name), under those names.
- ``pregnant`` / ``pregnancy_source``: True when an active pregnancy Condition, or a pregnancy status or hCG
  presence test within PREGNANT_WINDOW says so; False only when the newest such test, within NOT_PREGNANT_WINDOW,
  says not pregnant; None (and "") when nothing recent is recorded. Windows count back from ``now``, else from the
  record's latest clinical date.

Every source is "Type/id/_history/v" (or "Type/id" for a resource without a version). Nothing here raises on
malformed content: an unreadable resource is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from tools.records.codes import (
    as_list,
    as_mapping,
    clean,
    codings,
    concept_key,
    concept_text,
    first_text,
    is_void,
    status_code,
)
from tools.records.dates import When, clinical_when, sort_key
from tools.records.lines import medication_name, source_of, unique_resources
from tools.records.values import interpretation, numeric_value, value_unit

__all__ = ["LAB_CODES", "NOT_PREGNANT_WINDOW", "PREGNANT_WINDOW", "patient_facts"]

LOINC = "http://loinc.org"
# LOINC codes per lab the contraindication rules read; the keys are the names the rules recognise.
LAB_CODES: dict[str, frozenset[str]] = {
    "eGFR": frozenset({"33914-3", "48642-3", "48643-3", "62238-1", "98979-8", "50044-7", "50210-4", "69405-9",
                       "70969-1", "77147-7", "88293-6", "88294-4", "94677-2"}),
    "creatinine": frozenset({"2160-0", "38483-4", "14682-9", "59826-8", "35203-9"}),
    "platelets": frozenset({"777-3", "26515-7", "778-1", "49497-1"}),
    "INR": frozenset({"6301-6", "34714-6", "46418-0", "38875-1"}),
}
PREGNANCY_STATUS_CODES = frozenset({"82810-3", "11449-6"})
HCG_PRESENCE_CODES = frozenset({"2106-3", "2118-8", "2112-1", "19080-1"})
PREGNANCY_CONDITION_CODES = frozenset({"77386006", "72892002", "102875000"})
# A pregnancy lasts at most about 42 weeks, so an older positive says nothing about now; a negative says nothing
# about a pregnancy begun since, so it is trusted only for a few weeks (the safe error is "unknown").
PREGNANT_WINDOW = timedelta(days=294)
NOT_PREGNANT_WINDOW = timedelta(days=30)

_ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
_INACTIVE_ALLERGY = frozenset({"inactive", "resolved"})
_CURRENT_MEDICATION = frozenset({"active", "on-hold", "intended"})
_GONE_DEVICE = frozenset({"inactive", "entered-in-error"})
_PREGNANT_ANSWERS = frozenset({"la15173-0", "77386006", "pregnant", "positive", "10828004", "pos", "detected",
                               "yes"})
_NOT_PREGNANT_ANSWERS = frozenset({"la26683-5", "60001007", "not pregnant", "negative", "260385009", "neg",
                                   "not detected", "no"})


def _source(raw: Mapping[str, Any]) -> str | None:
    found = source_of(raw)
    if found is None:
        return None
    kind, rid, version = found
    return f"{kind}/{rid}/_history/{version}" if version else f"{kind}/{rid}"


def _newest_first(resources: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    ordered = sorted(resources, key=lambda raw: str(raw.get("id")))
    return sorted(ordered, key=lambda raw: sort_key(clinical_when(raw)), reverse=True)


def _once_per_key(pairs: Iterable[tuple[str | None, Mapping[str, Any]]]) -> list[Mapping[str, Any]]:
    """The newest resource of each key (pairs arrive newest first); resources without a key are left out."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for key, raw in pairs:
        if key is not None:
            chosen.setdefault(key, raw)
    return list(chosen.values())


def _is_current_condition(raw: Mapping[str, Any]) -> bool:
    status = status_code(raw.get("clinicalStatus"))
    if status is None:
        return not any(key.startswith("abatement") for key in raw)
    return status in _ACTIVE_CONDITION


def _conditions(conditions: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    current = [raw for raw in _newest_first(conditions) if not is_void(raw) and _is_current_condition(raw)]
    return _once_per_key((concept_key(raw.get("code")), raw) for raw in current)


def _allergy_text(raw: Mapping[str, Any]) -> str | None:
    substance = concept_text(raw.get("code"))
    if substance is None:
        substances = [as_mapping(r).get("substance") for r in as_list(raw.get("reaction"))]
        substance = next(iter(first_text(substances, 1)), None)
    if substance is None:
        return None
    signs: list[str] = []
    for reaction in as_list(raw.get("reaction")):
        for sign in first_text(as_list(as_mapping(reaction).get("manifestation")), 3):
            if sign not in signs:
                signs.append(sign)
    return f"{substance} (reaction: {', '.join(signs)})" if signs else substance


def _medication_key(raw: Mapping[str, Any]) -> str | None:
    key = concept_key(raw.get("medicationCodeableConcept"))
    if key is None:
        name = medication_name(raw)
        key = f"ref:{name}" if name else None
    return key


def _device_text(raw: Mapping[str, Any]) -> str | None:
    name = concept_text(raw.get("type"))
    if name is None:
        names = [clean(as_mapping(n).get("name")) for n in as_list(raw.get("deviceName"))]
        name = next((n for n in names if n), None)
    return name


def _coded(raw: Mapping[str, Any], field: str, wanted: frozenset[str]) -> bool:
    """Whether a coding of ``field`` (LOINC, SNOMED or unsystemed) carries one of the wanted codes."""
    return any(str(c.get("code")) in wanted for c in codings(raw.get(field)))


def _words(text: str | None) -> list[str]:
    return "".join(ch if ch.isalnum() else " " for ch in (text or "").casefold()).split()


def _lab_by_name(raw: Mapping[str, Any]) -> str | None:
    """The lab named by an Observation without a known LOINC code (hand-entered records, other code systems)."""
    words = _words(concept_text(raw.get("code")))
    joined = " ".join(words)
    if "egfr" in words or "gfr" in words or "glomerular filtration" in joined:
        return "eGFR"  # before creatinine: "eGFR (creatinine-based)" is a filtration rate
    if "creatinine" in words and not {"clearance", "urine", "urinary", "ratio"} & set(words):
        return "creatinine"
    # Not the platelet indices (mean volume, distribution width): their numbers are no count.
    if {"platelet", "platelets", "plt"} & set(words) and not {"mean", "volume", "distribution", "width"} & set(words):
        return "platelets"
    if "inr" in words or "international normalized ratio" in joined or "international normalised ratio" in joined:
        return "INR"
    return None


def _lab_name(raw: Mapping[str, Any]) -> str | None:
    for name, codes in LAB_CODES.items():
        if _coded(raw, "code", codes):
            return name
    if any(c.get("system") == LOINC for c in codings(raw.get("code"))):
        return None  # a LOINC-coded test that is none of ours: its name may mention creatinine (a ratio, a clearance)
    return _lab_by_name(raw)


def _labs(observations: list[Mapping[str, Any]]) -> dict[str, list[Any]]:
    labs: dict[str, list[Any]] = {}
    for raw in _newest_first(observations):
        name = _lab_name(raw)
        value = numeric_value(raw)
        source = _source(raw)
        if name is None or name in labs or value is None or source is None:
            continue
        labs[name] = [value, value_unit(raw) or "", source]
    return labs


def _answer_words(raw: Mapping[str, Any]) -> set[str]:
    """The Observation's answer as comparable strings: codes as written ("la15173-0") and texts as words."""
    texts: list[Any] = []
    value = raw.get("valueCodeableConcept")
    for coding in codings(value):
        texts += [coding.get("code"), coding.get("display")]
    texts += [concept_text(value), raw.get("valueString")]
    if isinstance(raw.get("valueBoolean"), bool):
        texts.append("yes" if raw["valueBoolean"] else "no")
    texts += (interpretation(raw) or "").split(",")
    answers: set[str] = set()
    for text in texts:
        if isinstance(text, str) and text.strip():
            answers.update({text.strip().casefold(), " ".join(_words(text))})
    return answers


def _pregnancy_answer(raw: Mapping[str, Any]) -> bool | None:
    """True (pregnant), False (not pregnant) or None (unknown, or an answer this does not understand)."""
    answers = _answer_words(raw)
    # "not pregnant" contains "pregnant": the negative answers are checked first.
    if answers & _NOT_PREGNANT_ANSWERS:
        return False
    if answers & _PREGNANT_ANSWERS:
        return True
    return None


def _is_pregnancy_condition(raw: Mapping[str, Any]) -> bool:
    if _coded(raw, "code", PREGNANCY_CONDITION_CODES):
        return True
    words = _words(concept_text(raw.get("code")))
    negated = {"not", "no", "history", "previous", "prior", "past"} & set(words)
    return bool({"pregnant", "pregnancy"} & set(words)) and not negated


def _within(when: When | None, as_of: datetime | None, window: timedelta) -> bool:
    # Undated evidence, or a record with no dates at all, cannot be placed in time: it is not trusted.
    if when is None or as_of is None:
        return False
    # A day of slack for time zones: a test stamped "tomorrow" in UTC was taken today somewhere.
    return -timedelta(days=1) <= as_of - sort_key(when) <= window


def _pregnancy(conditions: list[Mapping[str, Any]], observations: list[Mapping[str, Any]],
               as_of: datetime | None) -> tuple[bool | None, str]:
    for raw in conditions:
        if _is_pregnancy_condition(raw):
            return True, _source(raw) or ""
    tests = [raw for raw in _newest_first(observations) if not is_void(raw)
             and (_coded(raw, "code", PREGNANCY_STATUS_CODES) or _coded(raw, "code", HCG_PRESENCE_CODES))]
    for raw in tests:
        answer = _pregnancy_answer(raw)
        if answer is None:
            continue
        window = PREGNANT_WINDOW if answer else NOT_PREGNANT_WINDOW
        if _within(clinical_when(raw), as_of, window):
            return answer, _source(raw) or ""
        return None, ""  # the newest answer is too old to say anything; an older one says even less
    return None, ""


def _pairs(resources: Iterable[Mapping[str, Any]],
           text_of: Callable[[Mapping[str, Any]], str | None]) -> list[list[str]]:
    out: list[list[str]] = []
    for raw in resources:
        text, source = text_of(raw), _source(raw)
        if text and source and [text, source] not in out:
            out.append([text, source])
    return out


def patient_facts(resources: Iterable[Mapping[str, Any]], *, now: datetime | None = None) -> dict[str, Any]:
    """The PatientFacts dict (module docstring) of one patient's resources; ``now`` anchors the pregnancy windows
    (default: the latest clinical date among the resources)."""
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    chosen = unique_resources(resources)
    for raw in chosen:
        by_type.setdefault(str(raw["resourceType"]), []).append(raw)
    latest = max((w for raw in chosen if (w := clinical_when(raw)) is not None), key=sort_key, default=None)
    as_of = sort_key(now) if now is not None else (sort_key(latest) if latest is not None else None)

    conditions = _conditions(by_type.get("Condition", []))
    allergies = [raw for raw in _newest_first(by_type.get("AllergyIntolerance", []))
                 if not is_void(raw) and status_code(raw.get("clinicalStatus")) not in _INACTIVE_ALLERGY]
    medicines = [raw for raw in _newest_first(by_type.get("MedicationRequest", []) +
                                              by_type.get("MedicationStatement", []))
                 if raw.get("status") in _CURRENT_MEDICATION and not is_void(raw)]
    devices = [raw for raw in _newest_first(by_type.get("Device", [])) if raw.get("status") not in _GONE_DEVICE]
    observations = [raw for raw in by_type.get("Observation", []) if not is_void(raw)]
    pregnant, pregnancy_source = _pregnancy(conditions, observations, as_of)
    return {
        "conditions": _pairs(conditions, lambda raw: concept_text(raw.get("code"))),
        "allergies": _pairs(allergies, _allergy_text),
        "medications": _pairs(_once_per_key((_medication_key(raw), raw) for raw in medicines), medication_name),
        "devices": _pairs(devices, _device_text),
        "labs": _labs(observations),
        "pregnant": pregnant,
        "pregnancy_source": pregnancy_source,
    }
