"""The image reader role: MedGemma 4B reads one image per call into structured findings; MedSigLIP triages.

``await ImageReader(model, max_new_tokens=512).read(ImageInput(data, "image/png"), modality="chest_xray",
question="Is there an effusion?")`` returns an ``ImageRead`` (``ImageFindings`` plus one paragraph for the doctor,
cost and what went wrong); it never raises because of the model. ``modality_for(image_types, hint)`` picks the
prompt (``Modality``, one of ``MODALITIES``) from NEJM_Ext image types and free text. ``ImageTriage(classifier)``
ranks candidate diagnoses with a zero-shot ``ImageClassifier`` into a ``TriageResult``. The pure parts stand alone:
``parse_findings`` (tolerant, never raises), ``render_findings``, ``findings_json_schema`` for constrained decoding.
This package never imports ``tools`` or ``graphs``: images arrive as bytes.
"""

from agents.imaging.findings import (
    FindingsParse,
    ImageFindings,
    findings_json_schema,
    parse_findings,
    render_findings,
)
from agents.imaging.modality import MODALITIES, MODALITY_LABELS, Modality, check_modality, modality_for
from agents.imaging.prompts import system_prompt
from agents.imaging.reader import ImageInput, ImageRead, ImageReader
from agents.imaging.triage import ImageClassifier, ImageTriage, TriageResult, label_phrase

__all__ = [
    "MODALITIES",
    "MODALITY_LABELS",
    "FindingsParse",
    "ImageClassifier",
    "ImageFindings",
    "ImageInput",
    "ImageRead",
    "ImageReader",
    "ImageTriage",
    "Modality",
    "TriageResult",
    "check_modality",
    "findings_json_schema",
    "label_phrase",
    "modality_for",
    "parse_findings",
    "render_findings",
    "system_prompt",
]
