"""What the terminal shows of the panel and the safety rails as a consultation runs: one line per panel role and one
for the consensus each turn, every charge with the running cost, each blocked order with its reasons, and each
clinician approval; and the end panel's lines for them (``summary_lines``).

The lines are built by pure functions from the graph's state updates (the ``panel``, ``consensus``, ``costs``,
``blocked`` and ``approvals`` channels: plain dicts, see ``graphs.state``), so they are tested without a terminal;
``PanelPrinter`` keeps the running total between updates and prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape

from clinicflow.approval_prompt import format_price
from simulations.trail import one_line

# The state channels this view prints, in the order a turn produces them.
CHANNELS = ("panel", "consensus", "blocked", "costs", "approvals")


def _short(text: Any, limit: int = 90) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _ranking(items: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]], limit: int = 3) -> str:
    shown = []
    for item in list(items)[:limit]:
        if isinstance(item, Mapping):
            name, probability = item.get("diagnosis"), item.get("probability")
        else:
            name, probability = item[0], item[1] if len(item) > 1 else None
        shown.append(f"{name} {float(probability):.0%}" if isinstance(probability, int | float) else str(name))
    return ", ".join(shown) or "no differential"


def role_summary(role: str, output: Mapping[str, Any]) -> str:
    """What one role said, in a few words (the full output is in the transcript)."""
    if role == "hypothesis":
        text = f"{_ranking(output.get('differential') or [])}; next {output.get('next_step', '?')}"
        if output.get("moved_by"):
            text += f"; moved by {', '.join(map(str, output['moved_by']))}"
        return text
    if role == "test_chooser":
        parts = [", ".join(str(t.get("name")) for t in output.get("tests") or []) or "no tests"]
        parts += [f"record: {output[k]}" if k == "record_question" else f"image: {output[k]}"
                  for k in ("record_question", "image_request") if output.get(k)]
        return "; ".join(parts)
    if role == "challenger":
        verdict = "leader holds" if output.get("leader_holds", True) else "leader challenged"
        extra = [f"{label} {output[key]}" for key, label in (("alternative", "alt:"), ("falsifying_test", "test:"))
                 if output.get(key)]
        return "; ".join([verdict, *extra])
    if role == "stewardship":
        parts = [f"vetoes {', '.join(map(str, output['vetoes']))}" if output.get("vetoes") else "no veto"]
        parts += [f"{s.get('instead_of')} -> {s.get('use')}" for s in output.get("substitutions") or []]
        return "; ".join(parts)
    if role == "checklist":
        ready = "ready to diagnose" if output.get("ready_to_diagnose") else "not ready"
        problems = output.get("problems") or []
        return ready + (f"; {len(problems)} problem(s): {problems[0]}" if problems else "")
    return ", ".join(f"{k}={v}" for k, v in output.items())


def role_line(note: Mapping[str, Any]) -> str:
    """``hypothesis#0 ok (0.4s): Pneumonia 60%, ...`` or ``challenger#1 FAILED: unparseable: ...``, as markup."""
    role = str(note.get("role", "?"))
    label = f"{role}#{note.get('member', 0)}"
    timing = f" [dim]({float(note.get('seconds') or 0.0):.1f}s)[/]"
    if not note.get("ok") or note.get("output") is None:
        return f"    [red]{escape(label)} FAILED[/]{timing}: {escape(_short(note.get('error') or 'no usable output'))}"
    return f"    [cyan]{escape(label)}[/]{timing}: {escape(_short(role_summary(role, note['output'])))}"


def consensus_line(consensus: Mapping[str, Any]) -> str:
    """``consensus: test Complete blood count (hypothesis: ...; stewardship: no veto)``, with skipped tests."""
    line = (f"    [bold]consensus:[/] {escape(str(consensus.get('action')))} {escape(_short(consensus.get('text')))}"
            f" [dim]({escape(_short(consensus.get('rationale'), 140))})[/]")
    skipped = consensus.get("skipped") or []
    if skipped:
        shown = "; ".join(f"{s.get('name')}: {s.get('reason')}" for s in skipped[:3])
        line += f"\n    [dim]skipped: {escape(_short(shown, 160))}[/]"
    return line


def cost_line(entry: Mapping[str, Any], total: float) -> str:
    """``cost: +$300 visit (question round), total $300`` or ``+$150 Foo (unmatched: default price)``."""
    if entry.get("kind") == "visit":
        what = "visit (question round)"
    else:
        what = str(entry.get("name"))
        if entry.get("canonical") and entry.get("canonical") != entry.get("name"):
            what += f" = {entry['canonical']}"
        if not entry.get("matched", True):
            what += " (unmatched: default price)"
    return f"    [magenta]cost:[/] +{format_price(float(entry.get('price') or 0.0))} {escape(what)}, " \
           f"total {format_price(total)}"


def blocked_line(blocked: Mapping[str, Any]) -> str:
    """``blocked: CT abdomen with contrast: eGFR 12 mL/min (Observation/egfr-1/_history/1)``."""
    reasons = []
    for reason in blocked.get("reasons") or []:
        text = str(reason.get("reason", ""))
        if reason.get("sources"):
            text += f" ({', '.join(map(str, reason['sources']))})"
        reasons.append(text)
    return f"    [bold red]blocked:[/] {escape(str(blocked.get('test')))}: {escape('; '.join(reasons) or 'no reason given')}"


def _verdict(entry: Mapping[str, Any]) -> str:
    """``approved`` / ``edited to X`` / ``rejected``, with the note when there is one."""
    decision = str(entry.get("decision"))
    said = {"approve": "approved", "edit": f"edited to {entry.get('edited')}", "reject": "rejected"}.get(
        decision, decision)
    return said + (f" ({entry['note']})" if entry.get("note") else "")


def approval_line(entry: Mapping[str, Any]) -> str:
    """``clinician: test Complete blood count approved`` / ``diagnose X edited to Y`` / ``... rejected (note)``."""
    said = f"{entry.get('action')} {entry.get('text')} {_verdict(entry)}"
    return f"    [bold yellow]clinician:[/] {escape(said)}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary_lines(transcript: Mapping[str, Any]) -> list[str]:
    """The end panel's lines (markup): who decided, what it cost (question rounds, tests, unmatched names, the
    budget), orders refused with why, the clinician's verdicts; none for a transcript without these keys."""
    lines = []
    doctor = transcript.get("doctor") or {}
    if doctor.get("mode") == "panel":
        members = int(doctor.get("members") or 1)
        line = f"[bold]Doctor:[/] panel, {escape(str(doctor.get('variant')))}"
        if members > 1:
            line += f" ({members} panels, {escape(str(doctor.get('aggregate')))})"
        line += f"; {_count(len(transcript.get('consensus') or []), 'consensus turn')}"
        failed = sum(1 for note in transcript.get("panel") or [] if not note.get("ok"))
        if failed:
            line += f", [red]{_count(failed, 'role reply')} unusable[/]"
        lines.append(line)
    cost = transcript.get("cost")
    if cost is not None:
        line = (f"[bold]Cost:[/] {format_price(cost.get('total', 0.0))} "
                f"({_count(int(cost.get('visits', 0)), 'question round')}, "
                f"tests {format_price(cost.get('tests_total', 0.0))})")
        if doctor.get("budget") is not None:
            line += f" of a {format_price(doctor['budget'])} budget"
        if cost.get("unmatched"):
            line += f"; [yellow]unmatched tests at the default price:[/] {escape(', '.join(one_line(name, 60) for name in cost['unmatched']))}"
        lines.append(line)
    for blocked in transcript.get("blocked") or []:
        reasons = "; ".join(str(r.get("reason")) for r in blocked.get("reasons") or [])
        lines.append(f"[bold red]Blocked:[/] {escape(str(blocked.get('test')))} (turn {blocked.get('turn')}): "
                     f"{escape(reasons)}")
    for approval in transcript.get("approvals") or []:
        lines.append(f"[bold yellow]Clinician:[/] {escape(str(approval.get('action')))} "
                     f"{escape(str(approval.get('text')))}: {escape(_verdict(approval))}")
    return lines


class PanelPrinter:
    """Prints the panel, cost, blocked-order and approval lines of each graph update, keeping the cost total."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.total = 0.0

    def lines(self, update: Mapping[str, Any]) -> list[str]:
        """The lines for one node's state update (nothing for the channels it did not write)."""
        out: list[str] = []
        out += [role_line(note) for note in update.get("panel") or []]
        out += [consensus_line(c) for c in update.get("consensus") or []]
        out += [blocked_line(b) for b in update.get("blocked") or []]
        for entry in update.get("costs") or []:
            self.total += float(entry.get("price") or 0.0)
            out.append(cost_line(entry, self.total))
        out += [approval_line(a) for a in update.get("approvals") or []]
        return out

    def replay(self, state: Mapping[str, Any]) -> None:
        """On resume: the running total so far (printed once), so the next charges add up on screen."""
        costs = list(state.get("costs") or [])
        self.total = sum(float(entry.get("price") or 0.0) for entry in costs)
        if costs:
            charges = f"{len(costs)} charge{'s' if len(costs) != 1 else ''}"
            self.console.print(f"    [magenta]cost so far:[/] {format_price(self.total)} ({charges})")

    def __call__(self, update: Mapping[str, Any], replayed: bool = False) -> None:
        """Print one node's update; ``replayed``: ``update`` is the saved state of a resumed consultation (its
        dialogue was shown again; its charges are summed, not listed again)."""
        if replayed:
            self.replay(update)
            return
        for line in self.lines(update):
            self.console.print(line, highlight=False)
