"""Contraindication checks of an ordered test against what is known about the patient: kidney function and allergies
for contrast, implants for MRI, pregnancy for radiation and gadolinium, anticoagulation and counts for invasive tests.

Pure functions over plain facts (strings, numbers, small dataclasses). A graph node extracts those facts from the
transcript and, when there is one, the FHIR record; nothing here knows about FHIR, models or graphs, so the rules
can be tested and read on their own.

The bias is towards safety: a rule fires on any recorded fact that plausibly matches (a false warning costs a
clinician a glance; a missed block can cost a kidney).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.panel.text import contains_words, normalise_text, tokens

__all__ = [
    "Contraindication",
    "Contrast",
    "Fact",
    "Lab",
    "PatientFacts",
    "Severity",
    "TestTraits",
    "check_order",
    "creatinine_mg_dl",
    "is_blocked",
    "platelets_per_nl",
]

Severity = Literal["block", "warn"]
Contrast = Literal["iodinated", "gadolinium"]


@dataclass(frozen=True)
class Fact:
    """One textual fact about the patient and where it came from ("Condition/abc/_history/2", "patient answer")."""

    text: str
    source: str = ""


@dataclass(frozen=True)
class Lab:
    value: float
    unit: str = ""
    source: str = ""


def _facts(values: Iterable[Fact | str | tuple[str, str]]) -> tuple[Fact, ...]:
    out: list[Fact] = []
    for value in values:
        if isinstance(value, Fact):
            out.append(value)
        elif isinstance(value, str):
            out.append(Fact(value))
        else:
            text, source = value
            out.append(Fact(text, source))
    return tuple(out)


def _labs(values: Mapping[str, Lab | tuple[Any, ...] | float]) -> dict[str, Lab]:
    out: dict[str, Lab] = {}
    for name, value in values.items():
        if isinstance(value, Lab):
            out[name] = value
        elif isinstance(value, (int, float)):
            out[name] = Lab(float(value))
        else:
            out[name] = Lab(float(value[0]), *(str(v) for v in value[1:3]))
    return out


@dataclass(frozen=True)
class PatientFacts:
    """What is known about the patient, as plain facts. Strings and ``(text, source)`` pairs are accepted and stored
    as ``Fact``; labs as ``{name: (value, unit, source)}`` and stored as ``Lab``.

    Facts are taken as current: the extractor drops resolved or refuted conditions and stopped medications.
    ``pregnant`` is None when nobody has recorded it; it is never inferred from age and sex.
    """

    conditions: tuple[Fact, ...] = ()
    allergies: tuple[Fact, ...] = ()
    medications: tuple[Fact, ...] = ()
    devices: tuple[Fact, ...] = ()
    labs: Mapping[str, Lab] = field(default_factory=dict)
    pregnant: bool | None = None
    pregnancy_source: str = ""

    def __post_init__(self) -> None:
        for name in ("conditions", "allergies", "medications", "devices"):
            object.__setattr__(self, name, _facts(getattr(self, name)))
        object.__setattr__(self, "labs", _labs(self.labs))


@dataclass(frozen=True)
class TestTraits:
    """What about a test matters for safety, independent of how it is priced or named in the fee table."""

    __test__ = False  # not a pytest test class, whatever its name suggests

    name: str
    uses_contrast: Contrast | None = None
    ionising_radiation: bool = False
    mri: bool = False
    invasive: bool = False


@dataclass(frozen=True)
class Contraindication:
    rule: str
    severity: Severity
    reason: str
    sources: tuple[str, ...] = ()


def is_blocked(found: Iterable[Contraindication]) -> bool:
    return any(c.severity == "block" for c in found)


# Condition and allergy vocabularies. Matching is on whole words after normalisation, so "ESRD" matches
# "ESRD on haemodialysis" but "aki" does not match "takish".
_SEVERE_KIDNEY = (
    "end stage renal disease", "end stage kidney disease", "esrd", "eskd", "renal failure", "kidney failure",
    "ckd stage 4", "ckd stage 5", "ckd 4", "ckd 5", "ckd iv", "ckd v", "ckd g4", "ckd g5", "ckd stage iv",
    "ckd stage v", "chronic kidney disease stage 4", "chronic kidney disease stage 5", "chronic kidney disease stage iv",
    "chronic kidney disease stage v", "stage 4 chronic kidney disease", "stage 5 chronic kidney disease",
    "acute kidney injury", "aki", "acute renal failure", "acute renal injury",
    "dialysis", "haemodialysis", "hemodialysis", "peritoneal dialysis", "renal dialysis",
)  # fmt: skip
_MODERATE_KIDNEY = (
    "ckd stage 3", "ckd 3", "ckd iii", "ckd g3", "ckd 3a", "ckd 3b", "ckd stage 3a", "ckd stage 3b",
    "chronic kidney disease stage 3", "chronic kidney disease stage iii", "stage 3 chronic kidney disease",
    "renal insufficiency", "renal impairment", "chronic kidney disease", "ckd",
)  # fmt: skip
# Stages 1 and 2 have near-normal filtration; the generic "chronic kidney disease" term must not warn for them.
_MILD_KIDNEY = ("stage 1", "stage 2", "stage i", "stage ii", "ckd 1", "ckd 2", "ckd g1", "ckd g2")
_IODINATED_ALLERGY = (
    "iodinated contrast", "contrast media", "contrast medium", "contrast dye", "radiocontrast", "radiographic contrast",
    "x ray contrast", "ct contrast", "iodine contrast", "iohexol", "omnipaque", "iopamidol", "isovue", "iodixanol",
    "visipaque", "ioversol", "optiray", "iopromide", "ultravist",
)  # fmt: skip
_GADOLINIUM_ALLERGY = (
    "gadolinium", "gadobutrol", "gadavist", "gadovist", "gadoterate", "dotarem", "gadopentetate", "magnevist",
    "gadobenate", "multihance", "gadoteridol", "prohance", "mri contrast", "mr contrast",
)  # fmt: skip
# Shellfish and "iodine" allergies are not cross-reactive with contrast media (the allergen is a protein, and iodine
# is not an allergen). They still warn rather than pass silently because records often file a past contrast
# reaction as "iodine allergy"; the clinician checks what actually happened.
_IODINE_MYTH_ALLERGY = ("shellfish", "seafood", "shrimp", "prawn", "crab", "lobster", "iodine", "povidone iodine")
_METFORMIN = ("metformin", "glucophage", "fortamet", "glumetza", "riomet")
_ANTICOAGULANTS = (
    "warfarin", "coumadin", "jantoven", "apixaban", "eliquis", "rivaroxaban", "xarelto", "dabigatran", "pradaxa",
    "edoxaban", "savaysa", "lixiana", "heparin", "enoxaparin", "lovenox", "clexane", "dalteparin", "fragmin",
    "tinzaparin", "fondaparinux", "arixtra", "argatroban", "bivalirudin",
)  # fmt: skip
_ANTIPLATELETS = ("clopidogrel", "plavix", "prasugrel", "effient", "ticagrelor", "brilinta", "brilique")
_MRI_UNSAFE_DEVICES = (
    "pacemaker", "cardiac pacemaker", "implantable cardioverter defibrillator", "icd", "defibrillator",
    "cochlear implant", "neurostimulator", "spinal cord stimulator", "deep brain stimulator",
    "vagus nerve stimulator", "aneurysm clip", "implanted infusion pump",
)  # fmt: skip
_METAL_IN_EYE = re.compile(
    r"\b(metal|metallic|ferrous|ferromagnetic)\b.*\b(eye|orbit|orbital|intraocular|ocular)\b"
    r"|\b(eye|orbit|orbital|intraocular|ocular)\b.*\b(metal|metallic|ferrous|ferromagnetic)\b"
)
_MRI_CONDITIONAL = re.compile(r"\bmri? conditional\b")

_EGFR_SEVERE = 30.0  # mL/min/1.73m2: below this, contrast nephropathy and NSF risk outweigh most benefits
_EGFR_REDUCED = 45.0  # below this, prophylaxis and metformin review are expected before iodinated contrast
_CREATININE_SEVERE_MG_DL = 2.0
_CREATININE_UMOL_PER_MG_DL = 88.4
_PLATELETS_LOW = 50.0  # x10^9/L: the usual floor for a procedure with bleeding risk
_INR_HIGH = 1.5


def _matching(facts: Iterable[Fact], terms: Iterable[str]) -> list[Fact]:
    term_words = [tokens(term) for term in terms]
    return [f for f in facts if any(contains_words(tokens(f.text), words) for words in term_words)]


def _lab(facts: PatientFacts, accept: Any) -> tuple[str, Lab] | None:
    for name, lab in facts.labs.items():
        if accept(normalise_text(name)):
            return name, lab
    return None


def _is_egfr(name: str) -> bool:
    return "gfr" in name.split() or "egfr" in name.split() or "glomerular filtration" in name


def _is_creatinine(name: str) -> bool:
    words = name.split()
    # Clearance, urine and ratio measurements use other scales; a serum value is what the threshold means.
    return "creatinine" in words and not {"clearance", "urine", "urinary", "ratio"} & set(words)


def _is_platelets(name: str) -> bool:
    words = name.split()
    return "platelets" in words or "platelet" in words or "plt" in words


def _is_inr(name: str) -> bool:
    return "inr" in name.split() or "international normalized ratio" in name or "international normalised ratio" in name


def creatinine_mg_dl(lab: Lab) -> float:
    """Serum creatinine in mg/dL. umol/L (any spelling of micro) and mmol/L are converted; with no unit the size
    decides, since a value above 20 is implausible in mg/dL and one below 20 implausible in umol/L."""
    unit = lab.unit.casefold().replace("µ", "u").replace("μ", "u").replace(" ", "")
    if "umol" in unit or "micromol" in unit:
        return lab.value / _CREATININE_UMOL_PER_MG_DL
    if "mmol" in unit:
        return lab.value * 1000.0 / _CREATININE_UMOL_PER_MG_DL
    if "mg" in unit:
        return lab.value
    return lab.value / _CREATININE_UMOL_PER_MG_DL if lab.value > 20 else lab.value


def platelets_per_nl(lab: Lab) -> float:
    """Platelets in 10^9/L (numerically the same as 10^3/uL); a count per microlitre (150000/uL) is scaled."""
    unit = lab.unit.casefold().replace(" ", "")
    per_microlitre = ("/ul" in unit or "/mm3" in unit) and not any(m in unit for m in ("10^3", "10*3", "k/", "x10"))
    return lab.value / 1000.0 if per_microlitre or lab.value > 5000 else lab.value


def _lab_phrase(name: str, lab: Lab) -> str:
    return f"{name} {lab.value:g}{(' ' + lab.unit) if lab.unit else ''}"


def _kidney_evidence(facts: PatientFacts) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(severe, reduced) kidney findings, each as (phrase for the reason, source)."""
    severe: list[tuple[str, str]] = []
    reduced: list[tuple[str, str]] = []
    egfr = _lab(facts, _is_egfr)
    if egfr is not None:
        name, lab = egfr
        if lab.value < _EGFR_SEVERE:
            severe.append((f"{_lab_phrase(name, lab)} (below {_EGFR_SEVERE:g})", lab.source))
        elif lab.value < _EGFR_REDUCED:
            reduced.append((f"{_lab_phrase(name, lab)} (below {_EGFR_REDUCED:g})", lab.source))
    creatinine = _lab(facts, _is_creatinine)
    if creatinine is not None:
        name, lab = creatinine
        mg_dl = creatinine_mg_dl(lab)
        if mg_dl > _CREATININE_SEVERE_MG_DL:
            severe.append(
                (f"{_lab_phrase(name, lab)} ({mg_dl:.1f} mg/dL, above {_CREATININE_SEVERE_MG_DL:g})", lab.source)
            )
    severe_conditions = _matching(facts.conditions, _SEVERE_KIDNEY)
    severe += [(f"{f.text} on record", f.source) for f in severe_conditions]
    reduced += [
        (f"{f.text} on record", f.source)
        for f in _matching(facts.conditions, _MODERATE_KIDNEY)
        if f not in severe_conditions and not _matching([f], _MILD_KIDNEY)
    ]
    return severe, reduced


def _finding(rule: str, severity: Severity, reason: str, evidence: Sequence[tuple[str, str]]) -> Contraindication:
    sources = tuple(dict.fromkeys(source for _, source in evidence if source))
    return Contraindication(rule=rule, severity=severity, reason=reason, sources=sources)


def _joined(evidence: Sequence[tuple[str, str]]) -> str:
    return "; ".join(phrase for phrase, _ in evidence)


def _fact_evidence(found: Iterable[Fact], label: str) -> list[tuple[str, str]]:
    return [(f"{label} {f.text}".strip(), f.source) for f in found]


def _contrast_rules(test: TestTraits, facts: PatientFacts) -> list[Contraindication]:
    out: list[Contraindication] = []
    severe, reduced = _kidney_evidence(facts)
    if test.uses_contrast == "iodinated":
        if severe:
            out.append(
                _finding(
                    "iodinated-contrast-kidney",
                    "block",
                    f"{test.name} uses iodinated contrast, but kidney function is severely reduced: {_joined(severe)}.",
                    severe,
                )
            )
        elif reduced:
            out.append(
                _finding(
                    "iodinated-contrast-reduced-kidney",
                    "warn",
                    f"{test.name} uses iodinated contrast with reduced kidney function "
                    f"({_joined(reduced)}): consider hydration or a non-contrast alternative.",
                    reduced,
                )
            )
        allergy = _fact_evidence(_matching(facts.allergies, _IODINATED_ALLERGY), "allergy to")
        if allergy:
            out.append(
                _finding(
                    "iodinated-contrast-allergy",
                    "block",
                    f"{test.name} uses iodinated contrast, and the record shows {_joined(allergy)}.",
                    allergy,
                )
            )
        else:
            myth = _fact_evidence(_matching(facts.allergies, _IODINE_MYTH_ALLERGY), "allergy to")
            if myth:
                out.append(
                    _finding(
                        "iodine-or-shellfish-allergy",
                        "warn",
                        f"{test.name} uses iodinated contrast; the record shows {_joined(myth)}, which "
                        "does not cross-react with contrast, but check it is not a past contrast "
                        "reaction filed under another name.",
                        myth,
                    )
                )
        metformin = _fact_evidence(_matching(facts.medications, _METFORMIN), "taking")
        if metformin and (severe or reduced):
            evidence = metformin + (severe or reduced)
            out.append(
                _finding(
                    "iodinated-contrast-metformin",
                    "warn",
                    f"{test.name} uses iodinated contrast in a patient {_joined(metformin)} with "
                    f"reduced kidney function ({_joined(severe or reduced)}): hold metformin for 48 "
                    "hours and recheck kidney function.",
                    evidence,
                )
            )
    elif test.uses_contrast == "gadolinium":
        if severe:
            out.append(
                _finding(
                    "gadolinium-kidney",
                    "block",
                    f"{test.name} uses gadolinium, which risks nephrogenic systemic fibrosis when kidney "
                    f"function is severely reduced: {_joined(severe)}.",
                    severe,
                )
            )
        allergy = _fact_evidence(_matching(facts.allergies, _GADOLINIUM_ALLERGY), "allergy to")
        if allergy:
            out.append(
                _finding(
                    "gadolinium-allergy",
                    "block",
                    f"{test.name} uses gadolinium, and the record shows {_joined(allergy)}.",
                    allergy,
                )
            )
        else:
            # An unspecified "contrast" allergy is usually an iodinated reaction; gadolinium cross-reactivity is low
            # but not nil, so it warns rather than blocks.
            other = _fact_evidence(_matching(facts.allergies, _IODINATED_ALLERGY + ("contrast",)), "allergy to")
            if other:
                out.append(
                    _finding(
                        "gadolinium-other-contrast-allergy",
                        "warn",
                        f"{test.name} uses gadolinium; the record shows {_joined(other)}: check the "
                        "agent and the reaction.",
                        other,
                    )
                )
        if facts.pregnant:
            evidence = [("pregnancy", facts.pregnancy_source)]
            out.append(
                _finding(
                    "gadolinium-pregnancy",
                    "warn",
                    f"{test.name} uses gadolinium, which crosses the placenta; the patient is pregnant: "
                    "use it only if essential.",
                    evidence,
                )
            )
    return out


def _mri_rules(test: TestTraits, facts: PatientFacts) -> list[Contraindication]:
    if not test.mri:
        return []
    implants = facts.devices + facts.conditions
    conditional = [f for f in implants if _MRI_CONDITIONAL.search(normalise_text(f.text))]
    unsafe = [f for f in _matching(implants, _MRI_UNSAFE_DEVICES) if f not in conditional]
    unsafe += [f for f in implants if _METAL_IN_EYE.search(normalise_text(f.text)) and f not in unsafe]
    out: list[Contraindication] = []
    if unsafe:
        evidence = _fact_evidence(unsafe, "")
        out.append(
            _finding(
                "mri-implant", "block", f"{test.name} is an MRI, and the patient has {_joined(evidence)}.", evidence
            )
        )
    if conditional:
        evidence = [(f.text, f.source) for f in conditional]
        out.append(
            _finding(
                "mri-conditional-implant",
                "warn",
                f"{test.name} is an MRI, and the patient has {_joined(evidence)}: scan only under the "
                "device's conditions, with the device team informed.",
                evidence,
            )
        )
    return out


def _radiation_rules(test: TestTraits, facts: PatientFacts) -> list[Contraindication]:
    # Warn, never block: most diagnostic doses are far below fetal-harm thresholds and a blocked CT pulmonary
    # angiogram can be the greater danger; the clinician weighs ultrasound or MRI against the urgency.
    if not test.ionising_radiation or not facts.pregnant:
        return []
    evidence = [("pregnancy", facts.pregnancy_source)]
    return [
        _finding(
            "radiation-pregnancy",
            "warn",
            f"{test.name} uses ionising radiation and the patient is pregnant: consider ultrasound or MRI, "
            "and shield and minimise dose if it goes ahead.",
            evidence,
        )
    ]


def _bleeding_rules(test: TestTraits, facts: PatientFacts) -> list[Contraindication]:
    if not test.invasive:
        return []
    out: list[Contraindication] = []
    anticoagulants = _fact_evidence(_matching(facts.medications, _ANTICOAGULANTS), "")
    if anticoagulants:
        out.append(
            _finding(
                "invasive-anticoagulant",
                "warn",
                f"{test.name} is invasive and the patient takes an anticoagulant "
                f"({_joined(anticoagulants)}): plan when to hold or reverse it.",
                anticoagulants,
            )
        )
    antiplatelets = _fact_evidence(_matching(facts.medications, _ANTIPLATELETS), "")
    if antiplatelets:
        out.append(
            _finding(
                "invasive-antiplatelet",
                "warn",
                f"{test.name} is invasive and the patient takes an antiplatelet agent "
                f"({_joined(antiplatelets)}): weigh bleeding against stent thrombosis.",
                antiplatelets,
            )
        )
    platelets = _lab(facts, _is_platelets)
    if platelets is not None and platelets_per_nl(platelets[1]) < _PLATELETS_LOW:
        name, lab = platelets
        out.append(
            _finding(
                "invasive-low-platelets",
                "warn",
                f"{test.name} is invasive and {_lab_phrase(name, lab)} is below {_PLATELETS_LOW:g} x10^9/L.",
                [("", lab.source)],
            )
        )
    inr = _lab(facts, _is_inr)
    if inr is not None and inr[1].value > _INR_HIGH:
        name, lab = inr
        out.append(
            _finding(
                "invasive-high-inr",
                "warn",
                f"{test.name} is invasive and {_lab_phrase(name, lab)} is above {_INR_HIGH:g}.",
                [("", lab.source)],
            )
        )
    return out


def check_order(test: TestTraits, facts: PatientFacts) -> list[Contraindication]:
    """Every contraindication the known facts raise against ordering ``test``, blocks first.

    An empty list means nothing known stands in the way, not that the test is safe: facts that were never recorded
    (pregnancy status, an implant nobody mentioned) cannot be checked and are not assumed.
    """
    found = (
        _contrast_rules(test, facts) + _mri_rules(test, facts) + _radiation_rules(test, facts)
        + _bleeding_rules(test, facts)
    )  # fmt: skip
    return sorted(found, key=lambda c: c.severity != "block")
