"""Model-free record summaries over raw FHIR R4 JSON: one line per resource, a clinical snapshot, lab trends,
a token-budgeted rendering, a manifest of what a patient's record holds, and the facts a contraindication check
needs (``patient_facts``).

Every function takes plain JSON dicts (as a server sent them) and does no I/O. Error policy: malformed record
content never raises (an unreadable field is left out, a resource that cannot be cited is skipped); only invalid
arguments raise ValueError (a token budget below 1). Record text is data: it is cleaned to one line, free text
is quoted and capped, and nothing in it can take the shape of a `[Type/id]` citation.
"""

from tools.records.facts import patient_facts
from tools.records.lines import FactLine, resource_line, unique_resources
from tools.records.manifest import Manifest, ManifestCode, ManifestType, build_manifest
from tools.records.render import estimate_tokens, render_snapshot
from tools.records.snapshot import Demographics, Snapshot, SnapshotItem, build_snapshot
from tools.records.trends import LabTrend, LabValue, lab_trends

__all__ = [
    "Demographics", "FactLine", "LabTrend", "LabValue", "Manifest", "ManifestCode", "ManifestType", "Snapshot",
    "SnapshotItem", "build_manifest", "build_snapshot", "estimate_tokens", "lab_trends", "patient_facts",
    "render_snapshot", "resource_line", "unique_resources",
]
