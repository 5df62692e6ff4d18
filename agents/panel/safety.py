"""Safety inside the panel's loop: can't-miss diagnoses that stay in the differential until a finding excludes
them, and contraindication checks on an ordered test against what is known about the patient.

Both are pure functions over plain facts (strings, numbers, small dataclasses). A graph node extracts those facts
from the transcript and, when there is one, the FHIR record; nothing here knows about FHIR, models or graphs, so the
rules can be tested and read on their own.

The bias throughout is towards safety: a can't-miss diagnosis is only dropped on explicit evidence, never on
silence, and a contraindication rule fires on any recorded fact that plausibly matches (a false warning costs a
clinician a glance; a missed block can cost a kidney).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# ---------------------------------------------------------------------------------------------------------------
# Text matching shared by both halves
# ---------------------------------------------------------------------------------------------------------------

_NON_WORD = re.compile(r"[^a-z0-9]+")
# Clause boundaries: a result on one side of a comma or full stop says nothing about a test named on the other.
# A full stop only counts when followed by space or the end, so "0.01" stays one number.
_CLAUSE_BREAK = re.compile(r"[;,\n]|\.(?=\s|$)|\bbut\b|\bhowever\b", re.IGNORECASE)
# Words that, sitting between the words of an exclusion phrase, reverse or undermine it ("troponin NOT negative",
# "troponin ELEVATED, D-dimer negative" when no comma was written).
_GAP_BREAKERS = frozenset(
    ("not", "no", "non", "never", "without", "elevated", "raised", "high", "positive", "abnormal", "increased",
     "rising", "equivocal", "indeterminate", "borderline", "pending", "awaited")
)  # fmt: skip
# "no chest pain", "denies headache": a complaint keyword after one of these within a few words is not a complaint.
_NEGATORS = frozenset(("no", "not", "denies", "denied", "without", "never", "negative"))
_MAX_GAP = 5
_NEGATION_WINDOW = 3


def normalise_text(text: str) -> str:
    """Lower case, apostrophes dropped ("can't" -> "cant"), everything else that is not a letter or digit a space."""
    return _NON_WORD.sub(" ", text.casefold().replace("'", "").replace("\u2019", "")).strip()


def _tokens(text: str) -> list[str]:
    return normalise_text(text).split()


def _contains_words(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    """Whole-word, contiguous: "stemi" is in "acute inferior stemi" but "mi" is not in "mild"."""
    n = len(needle)
    return n > 0 and any(list(haystack[i : i + n]) == list(needle) for i in range(len(haystack) - n + 1))


def _phrase_in_clause(phrase: Sequence[str], clause: Sequence[str]) -> bool:
    """The phrase's words in order, at most ``_MAX_GAP`` words apart, with no gap word that reverses the result.

    Greedy earliest matching is enough: a later occurrence of the next word only adds gap words, never removes them.
    """
    if not phrase:
        return False
    for start, word in enumerate(clause):
        if word != phrase[0]:
            continue
        position = start
        for wanted in phrase[1:]:
            found = None
            for j in range(position + 1, min(len(clause), position + _MAX_GAP + 2)):
                if clause[j] == wanted:
                    found = j
                    break
                if clause[j] in _GAP_BREAKERS:
                    break
            if found is None:
                break
            position = found
        else:
            return True
    return False


def _clauses(text: str) -> list[list[str]]:
    return [tokens for part in _CLAUSE_BREAK.split(text) if (tokens := _tokens(part))]


# ---------------------------------------------------------------------------------------------------------------
# Can't-miss diagnoses
# ---------------------------------------------------------------------------------------------------------------

# Generic wording that excludes any diagnosis by name; "{}" is the diagnosis or one of its aliases. A bare "no X" is
# deliberately absent: in a patient's answer "no heart attack before" is history, not an exclusion.
_GENERIC_EXCLUSIONS = (
    "negative for {}",
    "no evidence of {}",
    "no {} seen",
    "{} ruled out",
    "ruled out {}",
    "{} excluded",
    "excluded {}",
    "excludes {}",
)


@dataclass(frozen=True)
class CantMiss:
    """A diagnosis that must stay under consideration for a presenting complaint until a finding excludes it."""

    diagnosis: str
    complaint: str
    aliases: tuple[str, ...] = ()
    excluded_by: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.diagnosis, *self.aliases)

    def named_by(self, name: str) -> bool:
        """Whether a differential entry refers to this diagnosis: "Acute inferior STEMI" names acute coronary
        syndrome through its alias STEMI."""
        words = _tokens(name)
        return any(_contains_words(words, _tokens(alias)) for alias in self.names)

    def exclusion_phrases(self) -> tuple[str, ...]:
        generic = tuple(template.format(name) for name in self.names for template in _GENERIC_EXCLUSIONS)
        return self.excluded_by + generic


@dataclass(frozen=True)
class _Complaint:
    name: str
    keywords: tuple[str, ...]
    diagnoses: tuple[str, ...]


@dataclass(frozen=True)
class CantMissTable:
    """The parsed data file: complaints with their keywords, and the diagnoses they must not miss."""

    complaints: tuple[_Complaint, ...]
    diagnoses: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]  # name -> (aliases, excluded_by)


_TABLE_PATH = Path(__file__).with_name("cant_miss.json")


def parse_cant_miss_table(data: Mapping[str, Any]) -> CantMissTable:
    """Validate the table's shape; a complaint naming a diagnosis the table does not define is an error, not a
    silent gap in safety."""
    raw_diagnoses = data.get("diagnoses")
    raw_complaints = data.get("complaints")
    if not isinstance(raw_diagnoses, Mapping) or not isinstance(raw_complaints, list):
        raise TypeError("can't-miss table needs a 'diagnoses' mapping and a 'complaints' list")
    diagnoses: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for name, entry in raw_diagnoses.items():
        aliases = tuple(str(a) for a in entry.get("aliases", []))
        excluded_by = tuple(normalise_text(str(e)) for e in entry.get("excluded_by", []))
        diagnoses[name] = (aliases, excluded_by)
    complaints: list[_Complaint] = []
    for entry in raw_complaints:
        name = entry.get("complaint")
        keywords = tuple(str(k) for k in entry.get("keywords", []))
        names = tuple(entry.get("diagnoses", []))
        if not name or not keywords or not names:
            raise ValueError(f"complaint entry needs a name, keywords and diagnoses: {entry!r}")
        unknown = [d for d in names if d not in diagnoses]
        if unknown:
            raise ValueError(f"complaint {name!r} names undefined diagnoses: {unknown}")
        complaints.append(_Complaint(name=name, keywords=keywords, diagnoses=names))
    return CantMissTable(complaints=tuple(complaints), diagnoses=diagnoses)


@functools.cache
def load_cant_miss_table() -> CantMissTable:
    """The project's table, read once."""
    return parse_cant_miss_table(json.loads(_TABLE_PATH.read_text(encoding="utf-8")))


def _keyword_present(keyword: str, words: Sequence[str]) -> bool:
    """A keyword occurs un-negated; "a + b" needs every part ("pregnant + bleeding" anywhere in the text)."""
    parts = [_tokens(part) for part in keyword.split("+")]
    return all(parts) and all(_unnegated_occurrence(part, words) for part in parts)


def _unnegated_occurrence(needle: Sequence[str], words: Sequence[str]) -> bool:
    n = len(needle)
    for i in range(len(words) - n + 1):
        if list(words[i : i + n]) == list(needle):
            before = words[max(0, i - _NEGATION_WINDOW) : i]
            if not _NEGATORS.intersection(before):
                return True
    return False


def complaints_in(text: str, table: CantMissTable | None = None) -> list[str]:
    """The presenting complaints the text mentions, in table order: "crushing chest pain and breathlessness" gives
    chest pain and shortness of breath."""
    table = table or load_cant_miss_table()
    words = _tokens(text)
    return [c.name for c in table.complaints if any(_keyword_present(k, words) for k in c.keywords)]


def cant_miss_for(text: str, table: CantMissTable | None = None) -> list[CantMiss]:
    """The can't-miss diagnoses for every complaint in the text, each once (under the first complaint naming it)."""
    table = table or load_cant_miss_table()
    wanted = set(complaints_in(text, table))
    items: list[CantMiss] = []
    seen: set[str] = set()
    for complaint in table.complaints:
        if complaint.name not in wanted:
            continue
        for name in complaint.diagnoses:
            if name in seen:
                continue
            seen.add(name)
            aliases, excluded_by = table.diagnoses[name]
            items.append(CantMiss(name, complaint.name, aliases, excluded_by))
    return items


def excluding_finding(item: CantMiss, findings_texts: Iterable[str]) -> str | None:
    """The first finding that explicitly excludes the diagnosis, for the provenance trail; None while it stands."""
    phrases = [_tokens(p) for p in item.exclusion_phrases()]
    for finding in findings_texts:
        for clause in _clauses(finding):
            if any(_phrase_in_clause(phrase, clause) for phrase in phrases):
                return finding
    return None


def open_cant_miss(
    cant_miss: Iterable[CantMiss], differential_names: Iterable[str], findings_texts: Iterable[str]
) -> list[CantMiss]:
    """The can't-miss diagnoses neither in the differential (by name or alias) nor excluded by a finding."""
    names = list(differential_names)
    findings = list(findings_texts)
    return [
        item
        for item in cant_miss
        if not any(item.named_by(name) for name in names) and excluding_finding(item, findings) is None
    ]


def keep_in_differential(
    differential: list[tuple[str, float]], open_items: Iterable[CantMiss], floor: float = 0.02
) -> list[tuple[str, float]]:
    """Add each open can't-miss diagnosis at ``floor`` and scale the others so the whole still sums to one.

    The floor is small on purpose: the point is to keep the diagnosis visible to the panel, not to claim it is
    likely. If the floors together would take more than half the probability, each is shrunk so the model's own
    ranking keeps the larger share. Idempotent: an item already named in the differential is not added again.
    """
    if not 0.0 < floor < 1.0:
        raise ValueError(f"floor must be between 0 and 1, got {floor}")
    present = [name for name, _ in differential]
    added = [item.diagnosis for item in open_items if not any(item.named_by(name) for name in present)]
    added = list(dict.fromkeys(added))
    if not added:
        return list(differential)
    floor = min(floor, 0.5 / len(added))
    remaining = 1.0 - floor * len(added)
    total = sum(max(p, 0.0) for _, p in differential)
    if total > 0:
        kept = [(name, max(p, 0.0) * remaining / total) for name, p in differential]
    else:
        # No probabilities to scale: the model's entries share what the floors leave, equally.
        share = remaining / len(differential) if differential else 0.0
        kept = [(name, share) for name, _ in differential]
    if not differential:
        # Nothing else to hold the remainder; the open items split it evenly rather than leave mass unassigned.
        return [(name, 1.0 / len(added)) for name in added]
    result = kept + [(name, floor) for name in added]
    result.sort(key=lambda entry: entry[1], reverse=True)
    return result


# ---------------------------------------------------------------------------------------------------------------
# Contraindications
# ---------------------------------------------------------------------------------------------------------------

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
    term_words = [_tokens(term) for term in terms]
    return [f for f in facts if any(_contains_words(_tokens(f.text), words) for words in term_words)]


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
