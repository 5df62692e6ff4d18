"""Scoring a finished consultation by its protocol's judges.

- ``clinicflow``: the yes/no judge (exact-match shortcut, tolerant parse, one stricter retry) and, when asked, the
  5-point rubric judge beside it;
- ``agentclinic``: upstream's moderator on the doctor's whole final message (no ``DIAGNOSIS READY`` means no
  diagnosis), read tolerantly, with what upstream's exact-"yes" rule would have said kept beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel

from graphs.state import DialogueEntry
from simulations.agentclinic import AgentClinicModerator
from simulations.cases import Case
from simulations.judge import Judge, Verdict
from simulations.llm import Usage
from simulations.rubric import RubricJudge


@dataclass
class ConsultationScore:
    verdict: dict[str, Any] | None = None
    rubric: dict[str, Any] | None = None
    judge_usage: dict[str, Any] = field(default_factory=dict)  # summed over the judges' calls


def _verdict_dict(verdict: Verdict) -> dict[str, Any]:
    return {
        "correct": verdict.correct,
        "method": verdict.method,
        "raw": verdict.raw,
        "model": verdict.model,
        "input_tokens": verdict.input_tokens,
        "output_tokens": verdict.output_tokens,
        "seconds": verdict.seconds,
        "calls": verdict.calls,
    }


def _last_doctor_reply(dialogue: Sequence[DialogueEntry]) -> str:
    for entry in reversed(dialogue):
        if entry["role"] == "doctor":
            return entry.get("reply") or entry["text"]
    return ""


async def score_consultation(
    protocol: str,
    case: Case,
    dialogue: Sequence[DialogueEntry],
    diagnosis: str | None,
    judge_model: BaseChatModel | None,
    *,
    rubric: bool = False,
) -> ConsultationScore:
    """Judge the consultation's outcome; nothing is judged when the case has no known diagnosis or no judge."""
    score = ConsultationScore()
    if not case.correct_diagnosis or judge_model is None:
        return score
    usage = Usage()
    if protocol == "agentclinic":
        moderated = await AgentClinicModerator(judge_model).verdict(case.correct_diagnosis, _last_doctor_reply(dialogue))
        score.verdict = {**_verdict_dict(moderated.verdict), "upstream_correct": moderated.upstream_correct}
        usage += _usage_of(moderated.verdict)
        # Without the tag there is no diagnosis to grade, whatever the forced final text says.
        proposed = diagnosis if moderated.verdict.method != "no_diagnosis" else None
    else:
        if diagnosis:
            verdict = await Judge(judge_model).verdict(case.correct_diagnosis, diagnosis)
            score.verdict = _verdict_dict(verdict)
            usage += _usage_of(verdict)
        proposed = diagnosis
    if rubric:
        result = await RubricJudge(judge_model).score(case.correct_diagnosis, proposed or "")
        score.rubric = {
            "scores": dict(result.scores),
            "total": result.total,
            "correct": result.correct,
            "method": result.method,
            "raw": result.raw,
        }
        usage += result.usage
    score.judge_usage = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "seconds": usage.seconds,
        "calls": usage.calls,
    }
    return score


def _usage_of(verdict: Verdict) -> Usage:
    return Usage(
        model=verdict.model,
        input_tokens=verdict.input_tokens,
        output_tokens=verdict.output_tokens,
        seconds=verdict.seconds,
        calls=verdict.calls,
    )
