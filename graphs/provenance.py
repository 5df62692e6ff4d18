"""Finding ids and what moved a differential: the consultation's provenance, kept in state as it happens.

Every finding gets an id ("F<n>", its 1-based position in the append-only findings list) when it is recorded, so a
differential can name the findings that moved it and a transcript can point from one to the other. For the single
doctor, which does not cite, a differential is moved by the findings that arrived since the doctor's previous one;
the panel's Hypothesis role cites ids itself (checked against the findings that exist).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graphs.state import Finding


def finding_id(position: int) -> str:
    """The id of the finding at 0-based ``position``."""
    return f"F{position + 1}"


def with_ids(existing: Sequence[Mapping[str, Any]] | None, new: Iterable[Finding]) -> list[Finding]:
    """``new`` findings numbered after ``existing`` (the state's findings before this update)."""
    start = len(existing or [])
    return [{**finding, "id": finding_id(start + i)} for i, finding in enumerate(new)]  # type: ignore[typeddict-item]


def ids_of(findings: Sequence[Mapping[str, Any]] | None) -> list[str]:
    return [f.get("id") or finding_id(i) for i, f in enumerate(findings or [])]


def new_since(findings: Sequence[Mapping[str, Any]] | None, differentials: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """Ids of the findings recorded since the last differential (all of them before the first one).

    A differential written at turn t is followed by the answer to that turn's action, recorded at turn t too, so
    "since" means a turn at or after the last differential's."""
    findings = list(findings or [])
    ids = ids_of(findings)
    if not differentials:
        return ids
    since = differentials[-1]["turn"]
    return [ids[i] for i, f in enumerate(findings) if f["turn"] >= since]


def known_ids(cited: Iterable[str], findings: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """The cited ids that name a finding that exists, each once, in citation order."""
    valid = set(ids_of(findings))
    return [i for i in dict.fromkeys(str(c).strip() for c in cited) if i in valid]
