"""Where a case gives its own answer away.

In 14 of AgentClinic's 107 MedQA cases the exact diagnosis is written inside an exam or test result (a biopsy
"consistent with X"), so ordering that test hands the doctor the answer. These checks flag it, so results can count
such leaks per case instead of scoring them as diagnostic skill.
"""

from __future__ import annotations

from simulations.cases import Case
from simulations.findings import flatten_findings
from simulations.textnorm import contains_phrase, phrase_pattern


def leaks_diagnosis(case: Case, text: str) -> bool:
    """Whether ``text`` contains the case's correct diagnosis as whole words (case, accents, punctuation folded)."""
    return contains_phrase(text, case.correct_diagnosis)


def leaking_findings(case: Case) -> list[str]:
    """Paths of the most specific findings whose text contains the diagnosis (empty when nothing leaks)."""
    leaking = [t.path for t in flatten_findings(case.findings) if leaks_diagnosis(case, t.render())]
    return [p for p in leaking if not any(q.startswith(p + ".") for q in leaking)]


def redact_diagnosis(case: Case, text: str, replacement: str = "[redacted]") -> tuple[str, int]:
    """``text`` with every mention of the diagnosis replaced, and how many were replaced."""
    pattern = phrase_pattern(case.correct_diagnosis)
    if pattern is None:
        return text, 0
    return pattern.subn(replacement, text)
