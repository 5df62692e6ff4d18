"""The snapshot as compact prompt text that fits a token budget.

Layout: a "Patient:" line, then one header per section ("Current medications (7):", "Labs (showing 3 of 25
tests):") followed by "- " item lines. Every item line ends with "| <as-of day>[ v<version>] [Type/id]"; the
patient line ends the same way. Older values of a lab test follow its latest value as indented "  - earlier:"
lines. Headers, "none recorded" lines and the final "(N lines omitted ...)" note carry no citation.

To fit the budget, item lines are dropped least recent first, in tiers: first the detail (older lab values,
encounters, procedures, immunizations, resolved problems, all merged by date), then the latest vitals and lab
values, and only then allergies, active problems and current medications. The patient line is never dropped; if
it alone (with the note) exceeds the budget, that minimal text is returned anyway.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tools.records.dates import day, sort_key
from tools.records.snapshot import Snapshot, SnapshotItem, lab_item, lab_value_text

TokenCounter = Callable[[str], int]

# (section, header title, drop tier: lower goes first); order is the order of the text.
LAYOUT: tuple[tuple[str, str, int], ...] = (
    ("allergies", "Allergies", 2),
    ("active_problems", "Active problems", 2),
    ("medications", "Current medications", 2),
    ("vitals", "Latest vitals", 1),
    ("labs", "Labs, latest first", 1),
    ("encounters", "Encounters, most recent first", 0),
    ("procedures", "Procedures, most recent first", 0),
    ("immunizations", "Immunizations", 0),
    ("resolved_problems", "Resolved problems", 0),
)
ALWAYS_SHOWN = frozenset({"allergies", "active_problems", "medications"})  # "none recorded" is itself a fact


def estimate_tokens(text: str) -> int:
    """About four characters per token, rounded up: the default when no tokenizer is given."""
    return math.ceil(len(text) / 4)


@dataclass(frozen=True)
class _Line:
    section: str
    text: str
    tier: int  # drop tier; -1 for older lab values (detail of a kept latest value)
    item: SnapshotItem
    order: int  # position in the full text


def cited(item: SnapshotItem, text: str | None = None) -> str:
    """"<text> | <as-of day>[ v<version>] [Type/id]"."""
    version = f" v{item.version}" if item.version else ""
    return f"{item.text if text is None else text} | {day(item.as_of)}{version} {item.cite()}"


def render_snapshot(snapshot: Snapshot, *, token_budget: int = 1200,
                    count_tokens: TokenCounter | None = None) -> str:
    """The snapshot as text of at most `token_budget` tokens by `count_tokens` (default: estimate_tokens)."""
    if token_budget < 1:
        raise ValueError(f"token_budget must be at least 1, got {token_budget}")
    count = count_tokens or estimate_tokens
    lines = _lines(snapshot)
    # Least recent first within a tier; older lab values share tier 0 with the other detail.
    drop_order = sorted(lines, key=lambda ln: (max(ln.tier, 0), sort_key(ln.item.as_of), ln.order))

    def text_without(k: int) -> str:
        return _compose(snapshot, lines, {id(ln) for ln in drop_order[:k]}, k)

    low, high = 0, len(drop_order)
    while low < high:  # smallest k that fits, assuming fewer lines never cost more tokens
        middle = (low + high) // 2
        if count(text_without(middle)) <= token_budget:
            high = middle
        else:
            low = middle + 1
    while low < len(drop_order) and count(text_without(low)) > token_budget:
        low += 1  # a tokenizer need not be monotonic: step on until it really fits
    return text_without(low)


def _lines(snapshot: Snapshot) -> list[_Line]:
    lines: list[_Line] = []
    for section, _title, tier in LAYOUT:
        if section == "labs":
            for trend in snapshot.labs:
                latest = lab_item(trend, 0)
                lines.append(_Line("labs", "- " + cited(latest), tier, latest, len(lines)))
                for index in range(1, len(trend.values)):
                    older = lab_item(trend, index)
                    text = "  - earlier: " + cited(older, lab_value_text(trend.values[index]))
                    lines.append(_Line("labs", text, -1, older, len(lines)))
            continue
        for item in getattr(snapshot, section):
            lines.append(_Line(section, "- " + cited(item), tier, item, len(lines)))
    return lines


def _compose(snapshot: Snapshot, lines: list[_Line], dropped: set[int], omitted: int) -> str:
    counts = snapshot.counts()
    out = [f"Patient: {cited(snapshot.demographics.item)}" if snapshot.demographics else "Patient: not in record"]
    kept = [ln for ln in lines if id(ln) not in dropped]
    for section, title, _tier in LAYOUT:
        shown = [ln for ln in kept if ln.section == section]
        total = counts[section]
        if not shown:
            if total == 0 and section in ALWAYS_SHOWN:
                out.append(f"{title}: none recorded")
            continue
        heads = sum(1 for ln in shown if ln.tier >= 0)
        noun = " tests" if section == "labs" else ""
        out.append(f"{title} ({total}{noun}):" if heads == total else f"{title} (showing {heads} of {total}{noun}):")
        out.extend(ln.text for ln in shown)
    if omitted:
        out.append(f"({omitted} older or less essential lines omitted to fit the token budget)")
    return "\n".join(out)
