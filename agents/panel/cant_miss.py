"""Can't-miss diagnoses by presenting complaint (from cant_miss.json), kept in the panel's differential until a
finding explicitly excludes them.

Pure functions over plain strings and small dataclasses: a graph node extracts the complaint, the differential and
the findings; nothing here knows about FHIR, models or graphs, so the rules can be tested and read on their own.

The bias is towards safety: a can't-miss diagnosis is only dropped on explicit evidence, never on silence.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.panel.text import contains_words, normalise_text, tokens

__all__ = [
    "CantMiss",
    "CantMissTable",
    "cant_miss_for",
    "complaints_in",
    "excluding_finding",
    "keep_in_differential",
    "load_cant_miss_table",
    "open_cant_miss",
    "parse_cant_miss_table",
]

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
    return [clause for part in _CLAUSE_BREAK.split(text) if (clause := tokens(part))]


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
        words = tokens(name)
        return any(contains_words(words, tokens(alias)) for alias in self.names)

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
    parts = [tokens(part) for part in keyword.split("+")]
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
    words = tokens(text)
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
    phrases = [tokens(p) for p in item.exclusion_phrases()]
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
