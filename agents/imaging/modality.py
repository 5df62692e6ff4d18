"""Which reading prompt an image gets: NEJM_Ext image types and free-text hints mapped onto six modalities.

The modalities are the narrow single-turn reads MedGemma 4B was tuned for (chest X-ray, dermatology, pathology,
ophthalmology, other radiology) plus a general clinical photograph for everything else. Mapping is a pure function
of its arguments: the first decisive image type wins, then the hint, then ``clinical_photo``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, get_args

__all__ = ["MODALITIES", "MODALITY_LABELS", "Modality", "check_modality", "modality_for"]

Modality = Literal["chest_xray", "dermatology", "pathology", "ophthalmology", "radiology", "clinical_photo"]
MODALITIES: tuple[Modality, ...] = get_args(Modality)

# How an image of each modality is named in text the doctor reads ("image-1: skin photograph").
MODALITY_LABELS: dict[Modality, str] = {
    "chest_xray": "chest X-ray",
    "dermatology": "skin photograph",
    "pathology": "pathology slide",
    "ophthalmology": "eye image",
    "radiology": "radiology image",
    "clinical_photo": "clinical photograph",
}

# NEJM_Ext "type" values (normalised: lower case, single spaces). "xray" is settled by the hint (chest or not).
# ECG tracings get the general photograph prompt: MedGemma 4B was not tuned on ECGs, and that prompt asks for what
# is shown and what cannot be assessed rather than inviting anatomy the radiology prompt would look for.
_TYPE_MODALITIES: dict[str, Modality | Literal["xray"]] = {
    "physical": "clinical_photo",
    "surgical": "clinical_photo",
    "instrument": "clinical_photo",
    "ecg": "clinical_photo",
    "ekg": "clinical_photo",
    "ct scan": "radiology",
    "ct": "radiology",
    "mri": "radiology",
    "ultrasound": "radiology",
    "echocardiogram": "radiology",
    "xray": "xray",
    "x-ray": "xray",
    "x ray": "xray",
    "dermatology": "dermatology",
    "hist/path": "pathology",
    "biopsy": "pathology",
    "ophthalmology": "ophthalmology",
}

_CHEST = re.compile(r"\b(?:chest|lungs?|thora(?:x|cic)|pulmonary|cxr)\b", re.IGNORECASE)
_XRAY = re.compile(r"\b(?:x[\s-]?rays?|radiographs?|cxr)\b", re.IGNORECASE)
# Hint patterns in order, first match wins: an imaging technique beats the body part it shows ("CT of the orbit"
# is radiology, not ophthalmology), and the general photograph comes last.
_HINTS: tuple[tuple[Modality, re.Pattern[str]], ...] = (
    (
        "radiology",
        re.compile(
            r"\b(?:ct|mri|ultrasound|sonograph\w*|echocardiogra\w*|echo|angiogra\w*|scans?|tomograph\w*|"
            r"radiolog\w*|fluoroscop\w*|mammogra\w*)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "pathology",
        re.compile(
            r"\b(?:hist(?:olog\w*|opath\w*)?|patholog\w*|biops\w*|slides?|smears?|stain\w*|cytolog\w*)\b", re.IGNORECASE
        ),
    ),
    (
        "ophthalmology",
        re.compile(
            r"\b(?:eyes?|fundus\w*|retina\w*|ophthalm\w*|cornea\w*|slit[\s-]lamp|iris|optic disc)\b", re.IGNORECASE
        ),
    ),
    ("dermatology", re.compile(r"\b(?:skin|derm\w*|rash\w*|moles?|nails?|cutaneous|eruptions?)\b", re.IGNORECASE)),
    ("clinical_photo", re.compile(r"\b(?:photo\w*|picture|ecg|ekg|electrocardiogra\w*|endoscop\w*)\b", re.IGNORECASE)),
)


def check_modality(value: str) -> Modality:
    """``value`` as a ``Modality``; a ValueError naming the six otherwise."""
    if value not in MODALITIES:
        raise ValueError(f"unknown image modality {value!r}; expected one of {', '.join(MODALITIES)}")
    return value  # type: ignore[return-value]  # checked against MODALITIES just above


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _from_hint(text: str) -> Modality | None:
    key = _normalise(text).replace(" ", "_")
    if key in MODALITIES:
        return key  # type: ignore[return-value]  # an explicit modality name ("chest_xray")
    if _XRAY.search(text):
        return "chest_xray" if _CHEST.search(text) else "radiology"
    for modality, pattern in _HINTS:
        if pattern.search(text):
            return modality
    return None


def _from_type(image_type: str, hint: str) -> Modality | None:
    mapped = _TYPE_MODALITIES.get(_normalise(image_type))
    if mapped == "xray":
        return "chest_xray" if _CHEST.search(hint) or _CHEST.search(image_type) else "radiology"
    if mapped is not None:
        return mapped
    # A type outside the NEJM_Ext vocabulary ("chest radiograph") is read like a hint.
    return _from_hint(image_type)


def modality_for(image_types: Sequence[str] = (), hint: str = "") -> Modality:
    """The modality for an image with these NEJM_Ext ``image_types`` and a free-text ``hint`` ("chest x-ray").

    The first type that maps to a modality decides; the hint only settles "xray" (chest when it mentions the
    chest, lungs or thorax, otherwise radiology) and decides when no type does. Nothing decisive: clinical_photo.
    """
    if isinstance(image_types, str):  # one type given bare, as some records store it
        image_types = [image_types]
    for image_type in image_types:
        if isinstance(image_type, str) and image_type.strip():
            found = _from_type(image_type, hint)
            if found is not None:
                return found
    return _from_hint(hint) or "clinical_photo"
