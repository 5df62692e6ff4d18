"""Citations in a record answer: find them, keep those that name a fetched resource, drop the rest.

An answer cites facts as ``[Type/id]`` (several may share brackets: ``[Observation/1, Encounter/2]``; a version
suffix ``/_history/3`` is read and dropped). A reference written bare in the prose (``Patient/evil``) counts too
when its type is a FHIR resource type, so an invented id cannot slip through by losing its brackets.

``check_citations(answer, known)`` is pure: it returns the answer with every unknown citation removed, the valid
citations in order of first use, the dropped ones, and the sentences that are left without any valid citation
(flagged, not removed: "No allergies are recorded." is a fair sentence with nothing to cite).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

__all__ = ["CitationCheck", "check_citations", "find_citations", "normalise_reference"]

# Resource types a bare reference may name; bracketed citations accept any capitalised type name.
FHIR_TYPES = frozenset(
    [
        "Account", "AllergyIntolerance", "Appointment", "Binary", "CarePlan", "CareTeam", "Claim", "ClaimResponse",
        "Composition", "Condition", "Coverage", "Device", "DeviceRequest", "DiagnosticReport", "DocumentReference",
        "Encounter", "EpisodeOfCare", "ExplanationOfBenefit", "FamilyMemberHistory", "Goal", "Group",
        "ImagingStudy", "Immunization", "Location", "Media", "Medication", "MedicationAdministration",
        "MedicationDispense", "MedicationRequest", "MedicationStatement", "NutritionOrder", "Observation",
        "Organization", "Patient", "Practitioner", "PractitionerRole", "Procedure", "Provenance",
        "QuestionnaireResponse", "RelatedPerson", "ServiceRequest", "Specimen",
    ]
)

_REF = r"[A-Z][A-Za-z]{1,40}/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?"
_GROUP = re.compile(rf"\[\s*({_REF}(?:\s*[,;]\s*{_REF})*)\s*\]")
_BARE = re.compile(rf"(?<![\w/\[.:-])({_REF})(?![\w/])")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def normalise_reference(reference: str) -> str:
    """``Type/id`` without a ``/_history/v`` suffix or a trailing full stop."""
    return reference.split("/_history/")[0].rstrip(".")


def find_citations(text: str) -> list[str]:
    """Every reference cited in ``text`` (bracketed, or bare with a FHIR type), normalised, in order, repeated."""
    found: list[tuple[int, str]] = []
    for group in _GROUP.finditer(text):
        for ref in re.split(r"\s*[,;]\s*", group.group(1)):
            found.append((group.start(), normalise_reference(ref)))
    outside = _GROUP.sub(lambda m: " " * len(m.group(0)), text)
    for bare in _BARE.finditer(outside):
        ref = normalise_reference(bare.group(1))
        if ref.split("/")[0] in FHIR_TYPES:
            found.append((bare.start(), ref))
    return [ref for _, ref in sorted(found, key=lambda item: item[0])]


@dataclass(frozen=True)
class CitationCheck:
    """What ``check_citations`` found: the cleaned answer and how its citations fared."""

    text: str
    used: list[str]
    dropped: list[str]
    unsupported: list[str]  # sentences left without a valid citation


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _clean_spacing(text: str) -> str:
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", "", text)
    return "\n".join(re.sub(r"[ \t]{2,}", " ", line).rstrip() for line in text.splitlines()).strip()


def check_citations(answer: str, known: Collection[str]) -> CitationCheck:
    """Keep citations of ``known`` references (``Type/id``), remove the others, flag unsupported sentences."""
    known_set = {normalise_reference(ref) for ref in known}
    used: list[str] = []
    dropped: list[str] = []

    def rewrite_group(match: re.Match[str]) -> str:
        refs = [normalise_reference(r) for r in re.split(r"\s*[,;]\s*", match.group(1))]
        kept = [r for r in refs if r in known_set]
        used.extend(kept)
        dropped.extend(r for r in refs if r not in known_set)
        return f"[{', '.join(_unique(kept))}]" if kept else ""

    def rewrite_bare(match: re.Match[str]) -> str:
        ref = normalise_reference(match.group(1))
        if ref.split("/")[0] not in FHIR_TYPES:
            return match.group(0)
        if ref in known_set:
            used.append(ref)
            return f"[{ref}]"
        dropped.append(ref)
        return ""

    # Bare references first, on the text with bracket groups masked, so a group's contents are read once.
    groups = list(_GROUP.finditer(answer))
    pieces: list[str] = []
    cursor = 0
    for group in groups:
        pieces.append(_BARE.sub(rewrite_bare, answer[cursor : group.start()]))
        pieces.append(rewrite_group(group))
        cursor = group.end()
    pieces.append(_BARE.sub(rewrite_bare, answer[cursor:]))
    text = _clean_spacing("".join(pieces))

    unsupported = []
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        # A heading that introduces a list ("From the record:") carries no fact of its own.
        if not re.search(r"[A-Za-z0-9]", sentence) or sentence.endswith(":"):
            continue
        if not any(ref in known_set for ref in find_citations(sentence)):
            unsupported.append(sentence)
    return CitationCheck(text=text, used=_unique(used), dropped=_unique(dropped), unsupported=unsupported)
