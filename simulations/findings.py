"""Findings as named tests, and deterministic matching of a doctor's test order against them.

A case's findings are a free-form nested object (MedQA) or a paragraph (NEJM). Every named node of that tree is a
candidate test (``tests.Complete_Blood_Count``, ``tests.Imaging.Chest_X-ray``, ``Vital_Signs.Blood_Pressure``), so
an order for "CXR" or "troponin" finds the listed result without asking a model: exact, reproducible, and immune to
a weak measurement model inventing values.

Matching folds both names the same way (case, punctuation, plurals, aliases such as CBC = complete blood count) and
scores token overlap in both directions: the order must be mostly explained by the test name (and its enclosing
sections), and a test counts only if the order covers most of its own name too, so "chest CT" never matches
"Chest X-ray". An order naming a specimen never matches a result filed under another ("blood glucose" is not
"Urinalysis.Glucose", "blood culture" is not "Urine_Culture").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from simulations.textnorm import fold

# Keys that name a part of a result rather than a test: shown through their parent, never matched on their own.
_GENERIC_KEYS = set("finding result description interpretation value detail note impression comment".split())
# Words that carry no test identity ("please order a CT scan of the chest" -> "ct chest").
_STOP = set(
    "a an the of for and or with without to on in at by from please order ordering get check obtain perform do "
    "request test testing level value result finding study scan report analysis show me patient we like want need "
    "would could can let run repeat".split()
)
# Words that narrow a test only weakly: an order for "serum creatinine" still matches "Creatinine".
_LIGHT = set("serum plasma total routine full complete bilateral right left general i ii".split())
_LIGHT_WEIGHT = 0.25

# Equivalent names folded onto one canonical phrase (written in plain words; folded like any name at import).
_ALIASES: dict[str, tuple[str, ...]] = {
    "cbc": ("complete blood count", "full blood count", "fbc", "blood count", "hemogram", "haemogram",
            "complete blood cell count", "cbc with differential"),
    "chem": ("basic metabolic panel", "bmp", "comprehensive metabolic panel", "cmp", "metabolic panel",
             "electrolyte", "electrolyte panel", "chemistry", "chemistry panel", "blood chemistry", "biochemistry",
             "chem 7", "chem7", "u and e", "urea and electrolyte", "chemistry studies"),
    # Not bare "blood": "blood culture" must stay apart from "urine culture".
    "lab": ("blood test", "blood work", "bloodwork", "laboratory", "lab", "laboratory test",
            "lab test", "laboratory study", "laboratory finding", "lab work", "labs"),
    "ecg": ("electrocardiogram", "electrocardiography", "ekg", "12 lead ecg", "12 lead ekg",
            "12 lead electrocardiogram", "12 lead"),
    "xray": ("x ray", "radiograph", "radiography", "plain film", "roentgenogram"),
    "chest xray": ("cxr",),
    "ct": ("computed tomography", "cat scan", "ct scan"),
    "mri": ("magnetic resonance imaging", "mr imaging", "magnetic resonance"),
    "ultrasound": ("ultrasonography", "sonography", "sonogram", "usg", "sono"),
    "echo": ("echocardiogram", "echocardiography", "tte", "transthoracic echocardiogram"),
    "troponin": ("cardiac enzyme", "cardiac marker", "cardiac biomarker", "trop", "hs troponin",
                 "high sensitivity troponin", "cardiac troponin"),
    "urinalysis": ("ua", "urine analysis", "urine test", "urine dipstick", "dipstick", "urine routine",
                   "urine microscopy"),
    "lft": ("liver function test", "liver function", "liver panel", "hepatic panel", "hepatic function panel",
            "liver enzyme", "transaminase"),
    "rft": ("renal function test", "renal function", "kidney function test", "kidney function", "renal panel"),
    "bun": ("blood urea nitrogen", "urea nitrogen"),
    "abg": ("arterial blood gas", "blood gas"),
    "tft": ("thyroid function test", "thyroid function", "thyroid panel", "thyroid study"),
    "coag": ("coagulation", "coagulation profile", "coagulation panel", "coagulation study", "pt inr", "pt ptt",
             "clotting screen", "clotting study"),
    "esr": ("erythrocyte sedimentation rate", "sed rate", "sedimentation rate"),
    "crp": ("c reactive protein",),
    "bnp": ("brain natriuretic peptide", "b type natriuretic peptide", "nt probnp", "probnp"),
    "hba1c": ("hemoglobin a1c", "haemoglobin a1c", "a1c", "glycated hemoglobin", "glycosylated hemoglobin"),
    "eeg": ("electroencephalogram", "electroencephalography"),
    "emg": ("electromyography", "electromyogram"),
    "csf": ("lumbar puncture", "lp", "spinal tap", "cerebrospinal fluid", "csf analysis"),
    "lipid": ("lipid panel", "lipid profile", "cholesterol panel"),
    "vital": ("vital sign", "vitals", "vital"),
    "exam": ("examination", "exam"),
    "neuro": ("neurological", "neurologic"),
    "cardio": ("cardiovascular", "cardiac", "heart"),
    "lung": ("respiratory", "pulmonary"),
    "abdomen": ("abdominal",),
    "skin": ("dermatological", "dermatologic", "dermatology"),
    "eye": ("ophthalmologic", "ophthalmological", "ophthalmic", "ocular"),
    "imaging": ("radiology", "radiological"),
    "chest": ("thorax", "thoracic"),
    "head": ("brain", "cranial", "cerebral"),
    "kidney": ("renal",),
    "liver": ("hepatic",),
    "pathology": ("histopathology", "histology", "histopathological", "histological"),
}


# The specimen a test is run on: an order for one never matches a result filed under another ("blood glucose" is not
# "Urinalysis.Glucose", "urine culture" is not "Stool_Test.Culture").
_SPECIMENS = {
    "blood": "blood", "serum": "blood", "plasma": "blood", "lab": "blood", "cbc": "blood", "chem": "blood",
    "lft": "blood", "rft": "blood", "abg": "blood", "coag": "blood",
    "urine": "urine", "urinalysis": "urine",
    "stool": "stool", "fecal": "stool", "faecal": "stool",
    "csf": "csf", "sputum": "sputum", "skin": "skin", "wound": "wound", "throat": "throat", "synovial": "synovial",
}
# Kinds of investigation: an order naming one is not answered by a result that lacks it ("skin biopsy" is not the
# skin examination).
_MODALITIES = set(
    "biopsy culture xray ct mri ultrasound echo ecg eeg emg smear aspirate aspiration endoscopy colonoscopy stain pcr "
    "serology antibody scraping cytology angiography angiogram doppler".split()
)


def _singular(token: str) -> str:
    if len(token) <= 3 or token.endswith(("ss", "us", "is")):
        return token
    if token.endswith("ies"):
        return token[:-3] + "y"
    return token[:-1] if token.endswith("s") else token


def _base_form(text: str) -> str:
    return " ".join(_singular(t) for t in fold(text).split())


def _compile_aliases() -> tuple[re.Pattern[str], dict[str, str]]:
    lookup = {_base_form(variant): canonical for canonical, variants in _ALIASES.items() for variant in variants}
    # Longest first, so "chest x ray" is read before "x ray" and "cardiac enzyme" before "cardiac".
    alternation = "|".join(re.escape(variant) for variant in sorted(lookup, key=len, reverse=True))
    return re.compile(rf"(?<!\S)(?:{alternation})(?!\S)"), lookup


_ALIAS_PATTERN, _ALIAS_LOOKUP = _compile_aliases()


def name_tokens(name: str) -> dict[str, float]:
    """The weighted identity of a test name: folded, singular, aliased, stop words dropped."""
    text = _ALIAS_PATTERN.sub(lambda m: _ALIAS_LOOKUP[m.group(0)], _base_form(name))
    return {t: (_LIGHT_WEIGHT if t in _LIGHT or len(t) == 1 else 1.0) for t in text.split() if t not in _STOP}


@dataclass(frozen=True)
class NamedTest:
    """One candidate test: a node of the findings tree."""

    path: str  # dotted keys from the findings root, e.g. "tests.Imaging.Chest_X-ray"
    label: str  # the node's own key, readable
    value: Any
    own: dict[str, float]  # identity tokens of the node's own name
    context: frozenset[str]  # tokens of enclosing sections: they explain an order but are not required
    depth: int

    def render(self) -> str:
        return f"{self.label}: {render_value(self.value)}"


@dataclass(frozen=True)
class TestMatch:
    test: NamedTest
    request_coverage: float  # share of the order's tokens explained by the test (with its sections)
    name_coverage: float  # share of the test's own name tokens present in the order


def render_value(value: Any) -> str:
    """Nested JSON as one readable line; a lone ``Findings`` wrapper is dropped."""
    if isinstance(value, dict):
        if len(value) == 1 and _is_generic(next(iter(value))):
            return render_value(next(iter(value.values())))
        parts = []
        for key, item in value.items():
            text = render_value(item)
            parts.append(f"{_readable(key)}: ({text})" if isinstance(item, dict) and len(item) > 1 else
                         f"{_readable(key)}: {text}")
        return "; ".join(parts)
    if isinstance(value, list):
        return ", ".join(render_value(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value).strip()


def flatten_findings(findings: dict[str, Any] | str) -> list[NamedTest]:
    """Every named node of a case's findings, parents before children, in file order."""
    tree = parse_findings_text(findings) if isinstance(findings, str) else findings
    out: list[NamedTest] = []
    exam = {k: v for k, v in tree.items() if k != "tests"}
    if isinstance(findings, dict) and exam:
        # "Physical examination" is an order a doctor makes; it returns the exam sections (not the tests).
        out.append(NamedTest("Physical_Examination_Findings", "Physical Examination", exam,
                             name_tokens("physical examination"), frozenset(), 0))
    _walk(tree, (), frozenset(), out)
    return out


def _walk(node: dict[str, Any], path: tuple[str, ...], context: frozenset[str], out: list[NamedTest]) -> None:
    for key, value in node.items():
        key = str(key)
        here = (*path, key)
        if key == "tests" and not path:  # the merge point upstream added: not a test name
            if isinstance(value, dict):
                _walk(value, here, context, out)
            continue
        if _is_generic(key):
            continue
        own = name_tokens(key)
        if own:
            out.append(NamedTest(".".join(here), _readable(key), value, own, context, len(here)))
        if isinstance(value, dict):
            _walk(value, here, context | own.keys(), out)


def match_test(request: str, tests: list[NamedTest]) -> TestMatch | None:
    """The listed test an order names, or None. Ties go to the shallower, then earlier, test."""
    wanted = name_tokens(request)
    total = sum(wanted.values())
    if not total:
        return None
    best: tuple[tuple[float, int, int], TestMatch] | None = None
    for order, test in enumerate(tests):
        shared = sum(w for t, w in wanted.items() if t in test.own or t in test.context)
        request_cov = shared / total
        name_cov = sum(w for t, w in test.own.items() if t in wanted) / sum(test.own.values())
        # Accept when the order is (nearly) all explained, or when the test's own name is wholly in the order and
        # explains at least half of it, the rest naming no other kind of investigation ("MRI of the brain with
        # contrast" -> "MRI_Brain", but "skin biopsy" -/-> "Skin" examination).
        unexplained = {t for t in wanted if t not in test.own and t not in test.context}
        close = request_cov >= 0.75 and name_cov > 0
        loose = name_cov >= 0.99 and request_cov >= 0.5 and not (unexplained & _MODALITIES)
        if not (close or loose) or _specimen_conflict(wanted, test, loose=not close):
            continue
        key = (request_cov + name_cov, -test.depth, -order)
        if best is None or key > best[0]:
            best = (key, TestMatch(test, request_cov, name_cov))
    return best[1] if best else None


def _specimen_conflict(wanted: dict[str, float], test: NamedTest, *, loose: bool) -> bool:
    asked = _specimens_of(wanted)
    if not asked:
        return False
    # A result's specimen is its own name's (Blood_Cultures, Laboratory_Tests.Urinalysis), else its section's
    # (Urinalysis.Glucose is urine). A loose match must also agree with the section: "blood glucose" is not
    # Urinalysis.Blood.
    own, section = _specimens_of(test.own), _specimens_of(test.context)
    filed = own or section
    return bool(filed and not asked & filed) or bool(loose and section and not asked & section)


def _specimens_of(tokens: Iterable[str]) -> set[str]:
    return {_SPECIMENS[t] for t in tokens if t in _SPECIMENS}


# Split points: " - " bullets, "1. " numbering, and a new "Name:" after a sentence end or before a bullet list.
_SEGMENT_SPLIT = re.compile(
    r"\s+-\s+"
    r"|(?:^|\s)\d{1,2}\.\s+(?=[A-Z])"
    r"|(?<=\.)\s+(?=[A-Z][^.:]{0,60}:\s)"
    r"|(?<=[^:\s])\s+(?=[A-Z][^.:()\-]{0,50}:\s*-\s)"
)
_NAMED = re.compile(r"^([^:]{1,80}?):\s*(.*)$", re.DOTALL)


def parse_findings_text(text: str) -> dict[str, Any]:
    """A findings paragraph (NEJM ``physical_exams``) as sections of named results.

    "Laboratory studies: - LDH: 356 U/L Biopsy findings: - ..." becomes
    {"Laboratory studies": {"LDH": "356 U/L"}, "Biopsy findings": {...}}. Unnamed statements are kept under their
    own text so they can still be matched; long preambles ("The information extracted ... includes:") are dropped
    as section names.
    """
    tree: dict[str, Any] = {}
    section: dict[str, Any] = tree
    for raw in _SEGMENT_SPLIT.split(text.strip()):
        segment = raw.strip().strip("-").strip()
        if not segment:
            continue
        named = _NAMED.match(segment)
        name, body = (named.group(1).strip(), named.group(2).strip()) if named else (segment.rstrip("."), segment)
        if segment.endswith(":"):
            name, body = segment[:-1].strip(), ""
        if not body:  # a header: what follows belongs to it, unless it is a long preamble
            section = tree if len(name.split()) > 6 else tree.setdefault(name, {})
            continue
        if len(name.split()) > 12:  # prose with no test name in it
            name = "Notes"
        target = section if isinstance(section, dict) else tree
        target[name if name not in target else f"{name} ({len(target) + 1})"] = body
    return tree


def _is_generic(key: str) -> bool:
    tokens = [t.rstrip("s") for t in fold(str(key)).split()]
    return len(tokens) == 1 and tokens[0] in _GENERIC_KEYS


def _readable(key: str) -> str:
    return str(key).replace("_", " ").strip()
