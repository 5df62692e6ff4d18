"""The records a benchmark run writes: one ``AttemptResult`` per finished case attempt (a line of
``results.jsonl``), and the helpers that name attempts and their transcript files.

An attempt is one case under one bias condition in one arm (the doctor: "single", "panel" or "panel:<variant>"),
repeated ``repeat`` times (0-based). Its key is stable across runs and processes, so a resumed run, a report and a
comparison of two runs all pair attempts by it. The arm is part of a key (and a transcript name) only when it is not
"single", so the keys of runs made before there were arms stay what they were.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulations.rubric import RUBRIC_CRITERIA, RUBRIC_PASS

__all__ = [
    "NO_BIAS", "RESULT_SCHEMA_VERSION", "RUBRIC_CRITERIA", "RUBRIC_PASS", "SINGLE_ARM", "AttemptError",
    "AttemptResult", "JudgeScore", "Protocol", "RoleUsage", "RubricScore", "attempt_key", "derive_seed", "parse_bias",
    "transcript_name",
]

RESULT_SCHEMA_VERSION = 1
NO_BIAS = "none"
SINGLE_ARM = "single"
Protocol = Literal["agentclinic", "clinicflow"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def attempt_key(case_id: str, bias: str, repeat: int, arm: str = SINGLE_ARM) -> str:
    """The stable key of one attempt: ``<case id>|<bias condition>|<repeat>``, and ``|<arm>`` after it when the arm
    is not "single"."""
    key = f"{case_id}|{bias}|{repeat}"
    return key if arm == SINGLE_ARM else f"{key}|{arm}"


def transcript_name(case_id: str, bias: str, repeat: int, arm: str = SINGLE_ARM) -> str:
    """File stem of an attempt's transcript: ``CASE-REPEAT``, with ``-BIAS`` under a bias and ``-ARM`` in an arm
    other than "single" before the repeat (``CASE-BIAS-ARM-REPEAT``), filesystem-safe."""
    parts = [_UNSAFE.sub("_", case_id).strip("_") or "case"]
    if bias != NO_BIAS:
        parts.append(_UNSAFE.sub("_", bias).strip("_"))
    if arm != SINGLE_ARM:
        parts.append(_UNSAFE.sub("_", arm).strip("_"))
    return "-".join([*parts, str(repeat)])


def derive_seed(run_seed: int, case_id: str, bias: str, repeat: int) -> int:
    """The seed of one attempt: a pure function of the run seed and the attempt, so a rerun draws the same.

    The arm is left out on purpose: every arm of a case meets the same seeded patient, so arms compare paired.
    """
    digest = hashlib.sha256(f"{run_seed}\x00{attempt_key(case_id, bias, repeat)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def parse_bias(condition: str) -> tuple[str | None, str | None]:
    """``none`` -> (None, None); ``doctor:recency`` -> ("recency", None); ``patient:recency`` -> (None, "recency")."""
    if condition == NO_BIAS:
        return None, None
    side, sep, name = condition.partition(":")
    if not sep or side not in ("doctor", "patient") or not name:
        raise ValueError(f"bias condition {condition!r} is not 'none', 'doctor:<bias>' or 'patient:<bias>'")
    return (name, None) if side == "doctor" else (None, name)


class RoleUsage(BaseModel):
    """What one role's model calls cost within an attempt."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0


class JudgeScore(BaseModel):
    """The yes/no judge (AgentClinic's moderator) on one attempt."""

    correct: bool | None = Field(description="None when the judge's answer could not be read")
    method: str = Field(description="exact | model | model_retry | unjudged | no_diagnosis")
    raw: str = ""
    # The agentclinic protocol also records what upstream's rule (only an exact lower-case "yes") would have said.
    upstream_correct: bool | None = None


class RubricScore(BaseModel):
    """The 5-point rubric judge: one point per criterion in ``RUBRIC_CRITERIA``; ``RUBRIC_PASS`` or more is correct."""

    scores: dict[str, int] = Field(default_factory=dict)
    total: int | None = None
    correct: bool | None = None
    method: str = Field(description="exact | model | model_retry | unparsed | no_diagnosis")
    raw: str = ""


class AttemptError(BaseModel):
    type: str
    message: str


class AttemptResult(BaseModel):
    """One line of ``results.jsonl``: everything measured about one finished case attempt."""

    model_config = ConfigDict(extra="ignore")

    schema_version: int = RESULT_SCHEMA_VERSION
    run_id: str
    attempt: str  # attempt_key(case_id, bias, repeat, arm)
    case_id: str
    dataset: str
    bias: str = NO_BIAS  # "none", "doctor:<name>" or "patient:<name>"
    repeat: int
    seed: int
    protocol: Protocol
    measurement_mode: str
    status: Literal["ok", "error"]
    error: AttemptError | None = None
    final_diagnosis: str | None = None
    correct_diagnosis: str = ""
    ended_by: str | None = None
    verdict: JudgeScore | None = None
    rubric: RubricScore | None = None
    correct: bool | None = None  # the headline score: the protocol's yes/no verdict
    turns: int = 0
    questions: int = 0
    tests: int = 0
    tests_ordered: list[str] = Field(default_factory=list)
    leak: bool = False  # the correct diagnosis appeared in a test result the doctor was shown
    leak_sources: list[str] = Field(default_factory=list)
    case_leak_prone: bool = False  # the case's own exam or test data contains the diagnosis
    # What became of the case's image (simulations.case_images.image_status; None: the case has none) and how many
    # image reads the consultation made (any outcome). "unavailable" attempts ran without the image they are about.
    image_status: str | None = None
    image_reads: int = 0
    usage: dict[str, RoleUsage] = Field(default_factory=dict)  # per role: reasoning, patient, measurement, judge
    input_tokens: int = 0
    output_tokens: int = 0
    model_seconds: float = 0.0
    wall_seconds: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    transcript: str | None = None  # relative to the run directory: "transcripts/<name>.json"
    # The arm the attempt ran under: "single" (the one-node doctor), "panel" (no-budget) or "panel:<variant>".
    arm: str = SINGLE_ARM
    # What the consultation cost (agents.panel.ledger): total USD, question rounds (visits), tests' USD, and the
    # ordered tests the fee table did not know (charged the default price).
    cost: float = 0.0
    cost_visits: int = 0
    cost_tests: float = 0.0
    unmatched_tests: list[str] = Field(default_factory=list)
    blocked_orders: int = 0  # tests refused by the contraindication gate
    # The final differential, best first: {"diagnosis": str, "probability": float, "correct": bool | None}. The final
    # diagnosis's item takes the judge's verdict; the others a deterministic name match against the correct diagnosis.
    differential: list[dict[str, Any]] = Field(default_factory=list)
    panel_failed_roles: int = 0  # panel role calls whose output was unusable
    budget: float | None = None  # the budget (USD) the attempt ran under, if any
    started_at: str = ""
    finished_at: str = ""
