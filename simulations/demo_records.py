"""FHIR R4 records for the demo cases' patients: history only, consistent with each case, never its answer.

The clinical facts (problems, medicines, allergies, visits with vitals and labs, procedures, immunizations, family
history) are data in ``demo_records.json``, one table per demo case; this module turns them into a transaction
bundle of ``PUT Type/id`` entries (ids kept: the patient of ``demo:chest-pain`` is ``Patient/demo-chest-pain``).
Dates count back from a reference date (default today), so the same date always gives the same bundle. Nothing in
a record is dated within a week of the reference date: today's presentation and today's test results stay out.

Errors::

    DemoRecordError       a facts table that does not fit (unknown case or key, an event before birth or too recent)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from simulations.cases import Case, demo_cases
from simulations.demo_fhir import (
    CVX,
    ENCOUNTER_TYPES,
    LOINC,
    RXNORM,
    SMOKING_STATUS,
    SNOMED,
    TERMINOLOGY,
    VITAL_SIGNS,
    JsonDict,
    age,
    base,
    coding,
    component,
    concept,
    observation,
    quantity,
    reference,
    status_concept,
    transaction_bundle,
)

DEMO_PATIENT_PREFIX = "demo-"
FACTS_FILE = "demo_records.json"
# History must end before the visit being simulated: nothing in the record is this close to the reference date.
RECENT_LIMIT = timedelta(days=7)
_DAYS_PER_MONTH = 30.4375
_DAYS_PER_YEAR = 365.25


class DemoRecordError(ValueError):
    """A demo facts table that cannot become a consistent record."""


def demo_patient_id(case: Case | str) -> str:
    """The FHIR Patient id of a demo case: ``demo:chest-pain``, ``chest-pain`` or its Case -> ``demo-chest-pain``."""
    slug = case.slug if isinstance(case, Case) else case.strip().removeprefix("demo:")
    if not slug:
        raise DemoRecordError(f"demo case {case!r} has no slug")
    return f"{DEMO_PATIENT_PREFIX}{slug}"


def demo_record_bundle(case: Case | str, *, reference_date: date | None = None) -> JsonDict:
    """The transaction bundle (PUT entries, ids kept) holding one demo patient's record as of ``reference_date``."""
    slug = demo_patient_id(case).removeprefix(DEMO_PATIENT_PREFIX)
    facts = _facts()
    if slug not in facts["cases"]:
        raise DemoRecordError(f"no demo record facts for {slug!r}; known: {', '.join(sorted(facts['cases']))}")
    builder = _RecordBuilder(slug, facts["cases"][slug], facts, reference_date or date.today())
    return transaction_bundle(builder.build())


def demo_record_bundles(*, reference_date: date | None = None) -> list[JsonDict]:
    """One bundle per built-in demo case, in the order of ``demo_cases()``."""
    when = reference_date or date.today()
    return [demo_record_bundle(case, reference_date=when) for case in demo_cases()]


def write_demo_bundles(directory: str | Path, *, reference_date: date | None = None) -> list[Path]:
    """Write ``demo-<slug>.json`` per demo case into ``directory`` (created if needed); the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for bundle in demo_record_bundles(reference_date=reference_date):
        patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        path = out / f"{patient['id']}.json"
        path.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


@cache
def _facts() -> Mapping[str, Any]:
    return json.loads(files("simulations").joinpath(FACTS_FILE).read_text(encoding="utf-8"))


def _shift_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def ckd_epi_2021(creatinine: float, age_years: float, female: bool) -> float:
    """eGFR (mL/min/1.73 m2) from serum creatinine (mg/dL) by the race-free CKD-EPI 2021 equation."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = creatinine / kappa
    return 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.2 * 0.9938**age_years * (1.012 if female else 1.0)


class _RecordBuilder:
    """Turns one case's facts table into its resources; checks every date against birth and the reference date."""

    def __init__(self, slug: str, facts: Mapping[str, Any], shared: Mapping[str, Any], today: date) -> None:
        self.slug, self.facts, self.shared, self.today = slug, facts, shared, today
        self.pid = demo_patient_id(slug)
        person = facts["patient"]
        self.female = person["gender"] == "female"
        self.birth = _shift_years(today, -int(person["age_years"])) - timedelta(days=int(person["days_past_birthday"]))
        self.patient_ref = reference("Patient", self.pid, " ".join([*person["given"], person["family"]]))
        clinician = shared["clinicians"].get(facts["clinician"])
        if clinician is None:
            raise DemoRecordError(f"{slug}: unknown clinician {facts['clinician']!r}")
        self.clinician = clinician
        self.clinician_ref = reference("Practitioner", clinician["id"], self._clinician_name())
        self.org_ref = reference("Organization", shared["organization"]["id"], shared["organization"]["name"])
        self.conditions = {c["key"]: c for c in facts["conditions"]}
        self.visit_dates: dict[date, str] = {}

    # ---------------- time ----------------

    def when(self, spec: Mapping[str, float], what: str) -> date:
        if "months_ago" in spec:
            day = self.today - timedelta(days=round(spec["months_ago"] * _DAYS_PER_MONTH))
        elif "age_months" in spec:
            day = self.birth + timedelta(days=round(spec["age_months"] * _DAYS_PER_MONTH))
        elif "age_years" in spec:
            day = self.birth + timedelta(days=round(spec["age_years"] * _DAYS_PER_YEAR))
        else:
            raise DemoRecordError(f"{self.slug}: {what} has no months_ago, age_months or age_years")
        if day < self.birth or day > self.today - RECENT_LIMIT:
            latest = self.today - RECENT_LIMIT
            raise DemoRecordError(f"{self.slug}: {what} falls on {day}, outside {self.birth}..{latest}")
        return day

    def age_at(self, day: date) -> float:
        return (day - self.birth).days / _DAYS_PER_YEAR

    # ---------------- resources ----------------

    def build(self) -> list[JsonDict]:
        resources = [self.organization(), self.practitioner(), self.patient()]
        resources += [self.condition(c) for c in self.facts["conditions"]]
        for number, visit in enumerate(self.facts["visits"], start=1):
            resources += self.visit(number, visit)
        resources += [self.medication(m) for m in self.facts["medications"]]
        resources += self.allergies()
        resources += [self.procedure(n, p) for n, p in enumerate(self.facts["procedures"], start=1)]
        resources += [self.immunization(n, i) for n, i in enumerate(self.facts["immunizations"], start=1)]
        resources += [self.family_history(n, f) for n, f in enumerate(self.facts["family_history"], start=1)]
        return resources

    def organization(self) -> JsonDict:
        org = self.shared["organization"]
        return base("Organization", org["id"]) | {"active": True, "name": org["name"]}

    def practitioner(self) -> JsonDict:
        c = self.clinician
        name = {"family": c["family"], "given": c["given"], "prefix": c.get("prefix", [])}
        return base("Practitioner", c["id"]) | {"active": True, "name": [name]}

    def patient(self) -> JsonDict:
        person = self.facts["patient"]
        patient = base("Patient", self.pid) | {
            "identifier": [{
                "type": concept(TERMINOLOGY + "v2-0203", "MR", "Medical record number"),
                "system": "https://clinicflow.example/fhir/demo-mrn",
                "value": self.pid.upper(),
            }],
            "active": True,
            "name": [{"use": "official", "family": person["family"], "given": person["given"]}],
            "gender": person["gender"],
            "birthDate": self.birth.isoformat(),
            "generalPractitioner": [self.clinician_ref],
            "managingOrganization": self.org_ref,
        }
        if person.get("marital_status"):
            patient["maritalStatus"] = {"coding": [coding(TERMINOLOGY + "v3-MaritalStatus", person["marital_status"])]}
        return patient

    def condition(self, c: Mapping[str, Any]) -> JsonDict:
        onset = self.when(c["onset"], f"condition {c['key']} onset")
        resolved = self.when(c["resolved"], f"condition {c['key']} resolution") if c.get("resolved") else None
        cat = c.get("category", "problem-list-item")
        cat_display = {"problem-list-item": "Problem List Item", "encounter-diagnosis": "Encounter Diagnosis"}[cat]
        out = base("Condition", self.condition_id(c["key"])) | {
            "clinicalStatus": status_concept(TERMINOLOGY + "condition-clinical", "resolved" if resolved else "active"),
            "verificationStatus": status_concept(TERMINOLOGY + "condition-ver-status", "confirmed"),
            "category": [{"coding": [coding(TERMINOLOGY + "condition-category", cat, cat_display)]}],
            "code": concept(SNOMED, c["snomed"], c["display"]),
            "subject": self.patient_ref,
            "onsetDateTime": onset.isoformat(),
            "recordedDate": onset.isoformat(),
        }
        if resolved:
            out["abatementDateTime"] = resolved.isoformat()
        return out

    def condition_id(self, key: str) -> str:
        if key not in self.conditions:
            raise DemoRecordError(f"{self.slug}: unknown condition {key!r}")
        return f"{self.pid}-cond-{key}"

    def visit(self, number: int, v: Mapping[str, Any]) -> list[JsonDict]:
        day = self.when(v, f"visit {number}")
        enc_id = f"{self.pid}-enc-{number:02d}"
        self.visit_dates[day] = enc_id
        code, display = ENCOUNTER_TYPES[v["type"]]
        encounter = base("Encounter", enc_id) | {
            "status": "finished",
            "class": coding(TERMINOLOGY + "v3-ActCode", "AMB", "ambulatory"),
            "type": [concept(SNOMED, code, display)],
            "subject": self.patient_ref,
            "participant": [{"individual": self.clinician_ref}],
            "period": {"start": f"{day}T09:30:00+00:00", "end": f"{day}T10:00:00+00:00"},
            "serviceProvider": self.org_ref,
        }
        if v.get("reason"):
            reason = reference("Condition", self.condition_id(v["reason"]), self.conditions[v["reason"]]["display"])
            encounter["reasonReference"] = [reason]
        enc_ref = reference("Encounter", enc_id)
        return [encounter, *self.vitals(number, day, v.get("vitals", {}), enc_ref),
                *self.labs(number, day, v.get("labs", {}), enc_ref), *self.smoking(number, day, enc_ref)]

    def vitals(self, number: int, day: date, vitals: Mapping[str, float], enc: JsonDict) -> list[JsonDict]:
        when = f"{day}T09:35:00+00:00"
        values = dict(vitals)
        adult = self.age_at(day) >= 18
        if adult and "weight" in values and "height" not in values and self.facts.get("height_cm"):
            values["height"] = self.facts["height_cm"]
        if "weight" in values and "height" in values and self.age_at(day) >= 2:
            values["bmi"] = round(values["weight"] / (values["height"] / 100) ** 2, 1)
        out = []
        if "systolic" in values:
            components = [
                component(LOINC, "8480-6", "Systolic blood pressure", quantity(values.pop("systolic"), "mm[Hg]")),
                component(LOINC, "8462-4", "Diastolic blood pressure", quantity(values.pop("diastolic"), "mm[Hg]")),
            ]
            code = concept(LOINC, "85354-9", "Blood pressure panel with all children optional", "Blood pressure")
            out.append(observation(f"{self.pid}-vs-{number:02d}-bp", self.patient_ref, cat="vital-signs", code=code,
                                   when=when, encounter=enc, components=components))
        for name, value in values.items():
            if name not in VITAL_SIGNS:
                raise DemoRecordError(f"{self.slug}: unknown vital sign {name!r}")
            loinc, display, unit = VITAL_SIGNS[name]
            code = concept(LOINC, loinc, display)
            if name == "oxygen_saturation":  # the vital-signs profile wants the generic SpO2 code beside the method one
                code["coding"].insert(0, coding(LOINC, "2708-6", "Oxygen saturation in Arterial blood"))
            out.append(observation(f"{self.pid}-vs-{number:02d}-{name.replace('_', '-')}", self.patient_ref,
                                   cat="vital-signs", code=code, when=when, encounter=enc, value=quantity(value, unit)))
        return out

    def labs(self, number: int, day: date, labs: Mapping[str, float], enc: JsonDict) -> list[JsonDict]:
        values = dict(labs)
        if "creatinine" in values and self.age_at(day) >= 18:
            values["egfr"] = round(ckd_epi_2021(values["creatinine"], self.age_at(day), self.female))
        out = []
        for key, value in values.items():
            spec = self.shared["labs"].get(key)
            if spec is None:
                raise DemoRecordError(f"{self.slug}: unknown lab {key!r}")
            low, high = self.lab_range(spec, day)
            out.append(observation(
                f"{self.pid}-lab-{number:02d}-{key.replace('_', '-')}", self.patient_ref,
                cat=spec.get("category", "laboratory"), code=concept(LOINC, spec["loinc"], spec["display"]),
                when=f"{day}T09:50:00+00:00", issued=f"{day}T16:00:00+00:00", encounter=enc,
                value=quantity(value, spec["unit"]), low=low, high=high,
            ))
        return out

    def lab_range(self, spec: Mapping[str, Any], day: date) -> tuple[float | None, float | None]:
        rng = spec.get("range")
        if isinstance(rng, Mapping):
            key = "child" if self.age_at(day) < 12 and "child" in rng else "female" if self.female else "male"
            rng = rng.get(key) or rng.get("adult")
        return (rng[0], rng[1]) if rng else (None, None)

    def smoking(self, number: int, day: date, enc: JsonDict) -> list[JsonDict]:
        status = self.facts.get("smoking")
        if not status or self.age_at(day) < 12:
            return []
        code, display = SMOKING_STATUS[status]
        return [observation(f"{self.pid}-smoking-{number:02d}", self.patient_ref, cat="social-history",
                            code=concept(LOINC, "72166-2", "Tobacco smoking status"), when=f"{day}T09:40:00+00:00",
                            encounter=enc, value=concept(SNOMED, code, display))]

    def medication(self, m: Mapping[str, Any]) -> JsonDict:
        start = self.when(m["start"], f"medication {m['key']} start")
        end = self.when(m["end"], f"medication {m['key']} end") if m.get("end") else None
        status = m.get("status", "active")
        if (status == "active") != (end is None):
            has = "has an" if end else "has no"
            raise DemoRecordError(f"{self.slug}: medication {m['key']} is {status} but {has} end date")
        dosage: JsonDict = {"text": m["dosage"]}
        if m.get("as_needed"):
            dosage["asNeededBoolean"] = True
        out = base("MedicationRequest", f"{self.pid}-med-{m['key']}") | {
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": concept(RXNORM, m["rxnorm"], m["display"]),
            "subject": self.patient_ref,
            "authoredOn": start.isoformat(),
            "requester": self.clinician_ref,
            "dosageInstruction": [dosage],
            "dispenseRequest": {"validityPeriod": {"start": start.isoformat()}},
        }
        if end:
            out["dispenseRequest"]["validityPeriod"]["end"] = end.isoformat()
        if start in self.visit_dates:
            out["encounter"] = reference("Encounter", self.visit_dates[start])
        if m.get("reason"):
            out["reasonReference"] = [reference("Condition", self.condition_id(m["reason"]))]
        if m.get("note"):
            out["note"] = [{"text": m["note"]}]
            if status == "stopped":
                out["statusReason"] = {"text": m["note"]}
        return out

    def allergies(self) -> list[JsonDict]:
        clinical = status_concept(TERMINOLOGY + "allergyintolerance-clinical", "active")
        verified = status_concept(TERMINOLOGY + "allergyintolerance-verification", "confirmed")
        first_visit = min(self.visit_dates, default=self.today - RECENT_LIMIT)
        if not self.facts["allergies"]:
            return [base("AllergyIntolerance", f"{self.pid}-allergy-nka") | {
                "clinicalStatus": clinical, "verificationStatus": verified,
                "code": concept(SNOMED, "716186003", "No known allergy", "No known allergies"),
                "patient": self.patient_ref, "recordedDate": first_visit.isoformat(),
            }]
        out = []
        for n, a in enumerate(self.facts["allergies"], start=1):
            onset = self.when(a["onset"], f"allergy {n} onset")
            reaction = a["reaction"]
            out.append(base("AllergyIntolerance", f"{self.pid}-allergy-{n}") | {
                "clinicalStatus": clinical, "verificationStatus": verified,
                "type": a["type"], "category": [a["category"]], "criticality": a["criticality"],
                "code": concept(SNOMED, a["snomed"], a["display"]),
                "patient": self.patient_ref, "onsetDateTime": onset.isoformat(), "recordedDate": onset.isoformat(),
                "reaction": [{"manifestation": [concept(SNOMED, reaction["snomed"], reaction["display"])],
                              "severity": "mild"}],
            })
        return out

    def procedure(self, n: int, p: Mapping[str, Any]) -> JsonDict:
        day = self.when(p["when"], f"procedure {n}")
        out = base("Procedure", f"{self.pid}-proc-{n:02d}") | {
            "status": "completed", "code": concept(SNOMED, p["snomed"], p["display"]),
            "subject": self.patient_ref, "performedDateTime": day.isoformat(),
        }
        if day in self.visit_dates:
            out["encounter"] = reference("Encounter", self.visit_dates[day])
        if p.get("reason"):
            out["reasonReference"] = [reference("Condition", self.condition_id(p["reason"]))]
        return out

    def immunization(self, n: int, i: Mapping[str, Any]) -> JsonDict:
        day = self.when(i["when"], f"immunization {n}")
        out = base("Immunization", f"{self.pid}-imm-{n:02d}") | {
            "status": "completed", "vaccineCode": concept(CVX, i["cvx"], i["display"]),
            "patient": self.patient_ref, "occurrenceDateTime": day.isoformat(), "primarySource": True,
        }
        if day in self.visit_dates:
            out["encounter"] = reference("Encounter", self.visit_dates[day])
        return out

    def family_history(self, n: int, f: Mapping[str, Any]) -> JsonDict:
        relation = concept(TERMINOLOGY + "v3-RoleCode", f["relationship"], f["display"])
        out = base("FamilyMemberHistory", f"{self.pid}-fmh-{n}") | {
            "status": "completed", "patient": self.patient_ref,
            "date": min(self.visit_dates, default=self.today - RECENT_LIMIT).isoformat(),
            "relationship": relation,
            "sex": concept("http://hl7.org/fhir/administrative-gender", f["sex"], f["sex"]),
        }
        if f.get("deceased_age"):
            out["deceasedAge"] = age(f["deceased_age"])
        conditions = []
        for c in f["conditions"]:
            code = concept(SNOMED, c["snomed"], c["display"]) if c.get("snomed") else {"text": c["text"]}
            item: JsonDict = {"code": code}
            if c.get("fatal"):
                item["contributedToDeath"] = True
            if c.get("onset_age"):
                item["onsetAge"] = age(c["onset_age"])
            conditions.append(item)
        out["condition"] = conditions
        return out

    def _clinician_name(self) -> str:
        c = self.clinician
        return " ".join([*c.get("prefix", []), *c["given"], c["family"]])
