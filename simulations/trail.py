"""Why a consultation went as it did, as plain text for the transcript renderers (Markdown and HTML).

The provenance trail: each differential in turn, who wrote it (doctor or panel), how each item moved against the one
before (up, down, new, dropped), the can't-miss items kept because nothing has excluded them, and the findings that
moved it, each by id, source and a short text. Then the cost ledger, orders refused for safety or budget, clinician
approvals, and the panel's deliberation per turn (each role's result in a line, and the consensus).

Transcripts come from disk and may be older or hand-edited: every key is optional and every value is read with a
fallback. A transcript without the keys (written before the panel existed) yields nothing, so nothing new is shown.
Texts are returned unescaped; each renderer escapes for its own format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ROLE_ORDER", "ApprovalView", "CostView", "FindingView", "PanelTurn", "RoleLine", "TrailItem", "TrailStep", "approvals_of",
    "blocked_of", "cost_of", "doctor_text", "finding_label", "findings_of", "has_provenance", "item_text", "money",
    "one_line", "panel_turns", "role_summary", "step_text", "trail_steps", "unknown_finding_ids", "visits_text",
]

SHORT_TEXT = 90  # characters of a finding's text quoted beside its id in the trail
SUMMARY_TEXT = 220  # characters of one role's one-line summary
# The panel's roles in the order they work (hypothesis first, then the four parallel ones), for a stable listing
# whatever order the parallel calls finished in.
ROLE_ORDER = ("hypothesis", "test_chooser", "challenger", "stewardship", "checklist")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value if isinstance(v, str | int | float) and not isinstance(v, bool)] \
        if isinstance(value, list) else []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def one_line(text: Any, limit: int) -> str:
    """Whitespace folded to single spaces, cut at ``limit`` characters with an ellipsis."""
    flat = " ".join(str(text if text is not None else "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def money(value: Any) -> str:
    """``1234.5`` -> ``$1,234.50``; whole dollars without cents; ``?`` for a non-number."""
    amount = _number(value)
    if amount is None:
        return "?"
    return f"${amount:,.0f}" if amount == int(amount) else f"${amount:,.2f}"


def _percent(p: float) -> str:
    return f"{p:.0%}"


def _key(name: str) -> str:
    return " ".join(name.casefold().split())


# ---------------------------------------------------------------- findings

@dataclass(frozen=True)
class FindingView:
    id: str
    turn: Any
    source: str
    text: str
    refs: tuple[str, ...]


def findings_of(t: Mapping[str, Any]) -> list[FindingView]:
    """The transcript's findings with their ids ("F<n>"; a finding without one gets its position, as the graph
    numbers them) and the FHIR or image references behind them."""
    return [
        FindingView(str(f.get("id") or f"F{i + 1}"), f.get("turn"), str(f.get("source") or "?"),
                    str(f.get("text") or ""), tuple(_strings(f.get("refs"))))
        for i, f in enumerate(_list(t.get("findings")))
    ]


def finding_label(fid: str, findings: Mapping[str, FindingView]) -> str:
    """"F4 (test:Troponin: 2.1 ng/mL, elevated)"; a cited id that names no finding says so."""
    found = findings.get(fid)
    if found is None:
        return f"{fid} (no such finding)"
    return f"{fid} ({found.source}: {one_line(found.text, SHORT_TEXT)})"


# ---------------------------------------------------------------- the trail

@dataclass(frozen=True)
class TrailItem:
    diagnosis: str
    probability: float | None
    change: str  # "up" | "down" | "same" | "new" | "" (the first differential: nothing to compare with)
    previous: float | None
    kept: bool  # a can't-miss diagnosis kept in the differential because nothing has excluded it


@dataclass(frozen=True)
class TrailStep:
    turn: Any
    by: str
    items: tuple[TrailItem, ...]
    dropped: tuple[tuple[str, float | None], ...]  # (diagnosis, its probability before) no longer listed
    moved_by: tuple[str, ...]
    first: bool


def has_provenance(t: Mapping[str, Any]) -> bool:
    """Whether the transcript records provenance (finding ids, or who moved a differential): older ones do not."""
    snapshots = _list(t.get("differentials"))
    return any("id" in f for f in _list(t.get("findings"))) or any(
        key in s for s in snapshots for key in ("moved_by", "by", "kept"))


def trail_steps(t: Mapping[str, Any]) -> list[TrailStep]:
    """One step per differential snapshot, each item compared with the snapshot before (names matched ignoring case
    and spacing; a change is one that shows at whole percents)."""
    steps: list[TrailStep] = []
    before: dict[str, tuple[str, float | None]] | None = None
    for snapshot in _list(t.get("differentials")):
        kept = {_key(name) for name in _strings(snapshot.get("kept"))}
        items: list[TrailItem] = []
        now: dict[str, tuple[str, float | None]] = {}
        for item in _list(snapshot.get("items")):
            name = str(item.get("diagnosis") or "?")
            p = _number(item.get("probability"))
            now[_key(name)] = (name, p)
            previous = before.get(_key(name)) if before is not None else None
            change = "" if before is None else "new" if previous is None else _direction(previous[1], p)
            items.append(TrailItem(name, p, change, previous[1] if previous else None, _key(name) in kept))
        dropped = tuple(value for key, value in (before or {}).items() if key not in now)
        steps.append(TrailStep(snapshot.get("turn"), str(snapshot.get("by") or "doctor"), tuple(items), dropped,
                               tuple(_strings(snapshot.get("moved_by"))), before is None))
        before = now
    return steps


def _direction(previous: float | None, p: float | None) -> str:
    if previous is None or p is None or round(previous * 100) == round(p * 100):
        return "same"
    return "up" if p > previous else "down"


def item_text(item: TrailItem) -> str:
    """"Acute coronary syndrome 55% (↑ from 40%)", "Aortic dissection 5% (kept: can't-miss)": a can't-miss
    diagnosis the panel kept because no finding has excluded it yet."""
    share = _percent(item.probability) if item.probability is not None else "?"
    notes = []
    if item.change in ("up", "down") and item.previous is not None:
        notes.append(f"{'↑' if item.change == 'up' else '↓'} from {_percent(item.previous)}")
    elif item.change == "new":
        notes.append("new")
    if item.kept:
        notes.append("kept: can't-miss")
    return f"{item.diagnosis} {share}" + (f" ({'; '.join(notes)})" if notes else "")


def step_text(step: TrailStep, findings: Mapping[str, FindingView]) -> str:
    """One readable line: turn, author, items with their changes, what dropped out, and the findings behind it."""
    head = f"Turn {step.turn} ({step.by}"
    head += ", first differential): " if step.first else "): "
    body = ", ".join(item_text(i) for i in step.items) or "no diagnosis listed"
    if step.dropped:
        body += "; dropped " + ", ".join(
            f"{name}" + (f" (was {_percent(p)})" if p is not None else "") for name, p in step.dropped)
    if step.moved_by:
        cause = "moved by " + ", ".join(finding_label(fid, findings) for fid in step.moved_by)
    else:
        cause = "no finding named as the cause"
    return f"{head}{body} — {cause}"


def unknown_finding_ids(t: Mapping[str, Any]) -> list[str]:
    """Finding ids the trail cites (differentials' and consensus' moved_by) that name no finding, each once."""
    known = {f.id for f in findings_of(t)}
    cited = [fid for s in _list(t.get("differentials")) for fid in _strings(s.get("moved_by"))]
    cited += [fid for c in _list(t.get("consensus")) for fid in _strings(c.get("moved_by"))]
    return [fid for fid in dict.fromkeys(cited) if fid not in known]


# ---------------------------------------------------------------- doctor, cost, safety, approvals

def doctor_text(t: Mapping[str, Any]) -> str | None:
    """"panel (budgeted; budget $1,500; 3 members, mean; approvals: none)", or None when not recorded."""
    doctor = _map(t.get("doctor"))
    if not doctor:
        return None
    mode = str(doctor.get("mode") or "single")
    details = []
    if mode == "panel" and doctor.get("variant"):
        details.append(str(doctor.get("variant")))
    if _number(doctor.get("budget")) is not None:
        details.append(f"budget {money(doctor.get('budget'))}")
    members = _number(doctor.get("members"))
    if members is not None and members > 1:
        details.append(f"{int(members)} members, {doctor.get('aggregate') or 'mean'}")
    if doctor.get("approve"):
        details.append(f"approvals: {doctor.get('approve')}")
    return mode + (f" ({'; '.join(details)})" if details else "")


def visits_text(n: int) -> str:
    """"1 visit (question round)", "3 visits (question rounds)"."""
    return f"{n} visit (question round)" if n == 1 else f"{n} visits (question rounds)"


@dataclass(frozen=True)
class CostView:
    rows: list[tuple[str, str, str, str, str, str]]  # turn, kind, name, fee-table name, price, matched
    total: str
    visits: int
    tests_total: str
    unmatched: list[str]
    budget: str | None


def cost_of(t: Mapping[str, Any]) -> CostView | None:
    """The cost ledger as table rows and totals; None when the transcript has no ledger. Totals are recomputed
    from the entries (a hand-edited total is not trusted)."""
    cost = t.get("cost")
    if not isinstance(cost, Mapping):
        return None
    entries = _list(cost.get("entries"))
    rows = [(str(e.get("turn", "?")), str(e.get("kind", "?")), str(e.get("name", "?")),
             str(e.get("canonical") or "-"), money(e.get("price")), "yes" if e.get("matched") else "no (default price)")
            for e in entries]
    prices = [_number(e.get("price")) or 0.0 for e in entries]
    tests = [_number(e.get("price")) or 0.0 for e in entries if e.get("kind") == "test"]
    unmatched = list(dict.fromkeys(str(e.get("name")) for e in entries if e.get("kind") == "test"
                                   and not e.get("matched")))
    budget = _number(_map(t.get("doctor")).get("budget"))
    return CostView(rows, money(sum(prices)), sum(1 for e in entries if e.get("kind") == "visit"), money(sum(tests)),
                    unmatched, money(budget) if budget is not None else None)


def blocked_of(t: Mapping[str, Any]) -> list[str]:
    """"Turn 4: CT abdomen with contrast refused (block): <reason> [sources: Observation/egfr/_history/2]"."""
    lines = []
    for order in _list(t.get("blocked")):
        reasons = _list(order.get("reasons")) or [{"reason": "no reason recorded"}]
        parts = []
        for reason in reasons:
            text = one_line(reason.get("reason") or reason.get("rule") or "no reason recorded", 400)
            severity = f" ({reason.get('severity')})" if reason.get("severity") else ""
            sources = _strings(reason.get("sources"))
            parts.append(f"{text}{severity}" + (f" [sources: {', '.join(sources)}]" if sources else ""))
        lines.append(f"Turn {order.get('turn', '?')}: {one_line(order.get('test') or '?', 120)} refused: "
                     + " ".join(parts))
    return lines


@dataclass(frozen=True)
class ApprovalView:
    turn: str
    action: str
    text: str
    reasons: str
    decision: str  # "approved", "edited to "X"", "rejected (note: ...)"


def approvals_of(t: Mapping[str, Any]) -> list[ApprovalView]:
    views = []
    for a in _list(t.get("approvals")):
        decision = str(a.get("decision") or "?")
        if decision == "approve":
            said = "approved"
        elif decision == "edit":
            said = f'edited to "{one_line(a.get("edited") or "", 200)}"'
        elif decision == "reject":
            said = "rejected"
        else:
            said = decision
        if a.get("note"):
            said += f" (note: {one_line(a.get('note'), 200)})"
        views.append(ApprovalView(str(a.get("turn", "?")), str(a.get("action") or "?"), one_line(a.get("text"), 200),
                                  "; ".join(one_line(r, 120) for r in _strings(a.get("reasons"))) or "-", said))
    return views


# ---------------------------------------------------------------- the panel

@dataclass(frozen=True)
class RoleLine:
    label: str  # "hypothesis#0"
    ok: bool
    summary: str  # one line: what the role said, or why it failed


@dataclass(frozen=True)
class PanelTurn:
    turn: Any
    roles: list[RoleLine]
    consensus: str | None  # "test: CBC"
    rationale: str
    skipped: list[str]
    failed: list[str]


def _differential_text(items: Any) -> str:
    parts = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping):
            name, p = item.get("diagnosis"), _number(item.get("probability"))
        elif isinstance(item, list | tuple) and len(item) >= 2:
            name, p = item[0], _number(item[1])
        else:
            continue
        parts.append(f"{name} {_percent(p)}" if p is not None else str(name))
    return ", ".join(parts)


def role_summary(role: str, output: Mapping[str, Any]) -> str:
    """What one role said, in a line: the hypothesis' differential and next step, the tests chosen, the challenge,
    the stewardship's vetoes and substitutions, the checklist's problems."""
    if role == "hypothesis":
        text = _differential_text(output.get("differential")) or "no differential"
        step = str(output.get("next_step") or "?")
        text += f"; next: {step}"
        if step == "ask" and output.get("question"):
            text += f' "{output.get("question")}"'
        moved = _strings(output.get("moved_by"))
        return text + (f"; moved by {', '.join(moved)}" if moved else "")
    if role == "test_chooser":
        tests = [str(_map(test).get("name")) for test in output.get("tests") or [] if _map(test).get("name")]
        parts = [("tests: " + "; ".join(tests)) if tests else "no test proposed"]
        if output.get("record_question"):
            parts.append(f"record: {output.get('record_question')}")
        if output.get("image_request"):
            parts.append(f"image: {output.get('image_request')}")
        return "; ".join(parts)
    if role == "challenger":
        holds = output.get("leader_holds", True) is not False
        parts = ["leader holds" if holds else "leader does not hold"]
        parts += [f"{label}: {output.get(key)}" for key, label in (
            ("concern", "concern"), ("alternative", "alternative"), ("falsifying_test", "falsify with"))
            if output.get(key)]
        return "; ".join(parts)
    if role == "stewardship":
        vetoes = _strings(output.get("vetoes"))
        swaps = [f"{_map(s).get('instead_of')} → {_map(s).get('use')}" for s in output.get("substitutions") or []
                 if isinstance(s, Mapping)]
        parts = [("vetoes: " + "; ".join(vetoes)) if vetoes else "no veto"]
        if swaps:
            parts.append("substitutions: " + "; ".join(swaps))
        if output.get("note"):
            parts.append(str(output.get("note")))
        return "; ".join(parts)
    if role == "checklist":
        problems = _strings(output.get("problems"))
        ready = "ready to diagnose" if output.get("ready_to_diagnose") else "not ready to diagnose"
        return ready + (f"; problems: {'; '.join(problems)}" if problems else "")
    return ", ".join(f"{k}: {v}" for k, v in output.items())


def _role_rank(note: Mapping[str, Any]) -> tuple[int, str]:
    role = str(note.get("role"))
    member = note.get("member")
    rank = ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER)
    return rank, f"{member if isinstance(member, int) else 0:06d}{role}"


def panel_turns(t: Mapping[str, Any]) -> list[PanelTurn]:
    """The panel's deliberation grouped by turn, in turn order: each role's line, then the consensus."""
    notes, decisions = _list(t.get("panel")), _list(t.get("consensus"))
    turns: list[Any] = list(dict.fromkeys([n.get("turn") for n in notes] + [c.get("turn") for c in decisions]))
    out = []
    for turn in turns:
        roles = []
        mine = sorted((n for n in notes if n.get("turn") == turn), key=_role_rank)
        for note in mine:
            label = f"{note.get('role', '?')}#{note.get('member', 0)}"
            if note.get("ok") and isinstance(note.get("output"), Mapping):
                summary = role_summary(str(note.get("role")), note["output"])
                roles.append(RoleLine(label, True, one_line(summary, SUMMARY_TEXT)))
            else:
                roles.append(RoleLine(label, False, one_line(f"failed: {note.get('error') or 'no usable output'}",
                                                             SUMMARY_TEXT)))
        decision = next((c for c in decisions if c.get("turn") == turn), None)
        consensus = rationale = None
        skipped: list[str] = []
        failed: list[str] = []
        if decision is not None:
            consensus = f"{decision.get('action', '?')}: {one_line(decision.get('text'), 200)}"
            rationale = one_line(decision.get("rationale"), 400)
            skipped = [f"{_map(s).get('name')} ({_map(s).get('reason')})" for s in decision.get("skipped") or []
                       if isinstance(s, Mapping)]
            failed = _strings(decision.get("failed_roles"))
        out.append(PanelTurn(turn, roles, consensus, rationale or "", skipped, failed))
    return out
