"""One consultation transcript as a standalone, readable HTML page (linked from the report's cases table).

The transcript JSON comes from disk and may be from an older version or hand-edited, so every field is read with
a fallback and every value is escaped: the page shows what is there and never executes anything from a case.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from simulations.trail import (
    approvals_of,
    blocked_of,
    cost_of,
    doctor_text,
    finding_label,
    findings_of,
    has_provenance,
    item_text,
    panel_turns,
    trail_steps,
    visits_text,
)
from simulations.transcript import IMAGE_STATUS_TEXT

__all__ = ["render_transcript_html"]

CSS = """
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #263238; margin: 0 auto;
       max-width: 960px; padding: 16px 24px 48px; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #cfd8dc; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; } dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
.turn { border-left: 4px solid #b0bec5; margin: 10px 0; padding: 4px 12px; background: #fafafa; }
.turn.doctor { border-color: #1e88e5; background: #e3f2fd; }
.turn.patient { border-color: #43a047; background: #e8f5e9; }
.turn.measurement { border-color: #fb8c00; background: #fff3e0; } .turn.clinician { border-color: #8e24aa; }
.turn.imaging { border-color: #00897b; background: #e0f2f1; }
.turn .who { font-weight: 600; } .turn .meta { color: #607d8b; font-size: 12px; }
.turn .text { white-space: pre-wrap; margin: 4px 0; } .degraded { color: #c62828; }
table { border-collapse: collapse; font-size: 13px; } th, td { border: 1px solid #cfd8dc; padding: 3px 8px; }
th { background: #eceff1; text-align: left; }
.correct { color: #2e7d32; font-weight: 600; } .incorrect { color: #c62828; font-weight: 600; }
.turn.safety { border-color: #c62828; background: #ffebee; }
ol.trail li { margin: 6px 0; } .trail .by { color: #607d8b; } .trail .up { color: #2e7d32; }
.trail .down { color: #c62828; } .trail .kept { color: #6a1b9a; font-style: italic; }
.trail .moved { color: #37474f; font-size: 13px; } code.ref { font-size: 12px; }
.failed { color: #c62828; font-weight: 600; } .ok { color: #2e7d32; }
"""


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _num(value: Any, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) and not isinstance(value, bool) else "?"


def _facts(items: list[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>"


def _verdict(t: Mapping[str, Any]) -> str:
    verdict = _map(t.get("verdict"))
    if not verdict:
        return "not judged (no correct diagnosis known, or no diagnosis given)"
    word = {True: "correct", False: "incorrect"}.get(verdict.get("correct"), "unjudged")
    text = f'<span class="{word}">{word}</span> (method: {_e(verdict.get("method", "?"))})'
    if verdict.get("raw"):
        text += f"; the judge said: {_e(verdict.get('raw'))}"
    if verdict.get("upstream_correct") is not None:
        text += f"; upstream's exact-'yes' rule: {'correct' if verdict.get('upstream_correct') else 'incorrect'}"
    return text


def _rubric(t: Mapping[str, Any]) -> str:
    rubric = _map(t.get("rubric"))
    if not rubric:
        return ""
    scores = _map(rubric.get("scores"))
    rows = "".join(f"<tr><td>{_e(name)}</td><td>{_e(score)}</td></tr>" for name, score in scores.items())
    word = {True: "correct", False: "incorrect"}.get(rubric.get("correct"), "unjudged")
    return (f"<h2>Rubric</h2><p>Total {_e(rubric.get('total'))} of 5: <span class=\"{word}\">{word}</span> "
            f"(method: {_e(rubric.get('method', '?'))})</p>"
            + (f"<table><tr><th>criterion</th><th>score</th></tr>{rows}</table>" if rows else ""))


def _dialogue(t: Mapping[str, Any]) -> str:
    parts = []
    for entry in _list(t.get("dialogue")):
        role = str(entry.get("role", "?"))
        action = f" [{_e(entry.get('action'))}]" if entry.get("action") else ""
        meta = (f"{_e(entry.get('input_tokens', 0))} prompt + {_e(entry.get('output_tokens', 0))} completion tokens, "
                f"{_num(entry.get('seconds', 0.0))} s" + (f", {_e(entry.get('model'))}" if entry.get("model") else ""))
        degraded = ' <span class="degraded">(degraded: the reply was unusable)</span>' if entry.get("degraded") else ""
        css = role if role in ("doctor", "patient", "measurement", "clinician", "imaging", "safety") else "other"
        parts.append(f'<div class="turn {css}"><span class="who">Turn {_e(entry.get("turn", "?"))} · '
                     f"{_e(role.capitalize())}{action}</span>{degraded} <span class=\"meta\">{meta}</span>"
                     f'<div class="text">{_e(entry.get("text", ""))}</div></div>')
    return "\n".join(parts) or "<p>No dialogue recorded.</p>"


def _findings(t: Mapping[str, Any]) -> str:
    if has_provenance(t):
        # With provenance every finding shows its id (what the trail cites) and the FHIR or image refs behind it.
        rows = "".join(
            f'<tr id="finding-{_e(f.id)}"><td>{_e(f.id)}</td><td>{_e(f.turn)}</td><td>{_e(f.source)}</td>'
            f"<td>{_e(f.text)}</td><td>{_refs(f.refs)}</td></tr>" for f in findings_of(t))
        return ("<table><tr><th>id</th><th>turn</th><th>source</th><th>finding</th><th>refs</th></tr>"
                f"{rows}</table>") if rows else "<p>None.</p>"
    rows = "".join(f"<tr><td>{_e(f.get('turn'))}</td><td>{_e(f.get('source'))}</td><td>{_e(f.get('text'))}</td></tr>"
                   for f in _list(t.get("findings")))
    return f"<table><tr><th>turn</th><th>source</th><th>finding</th></tr>{rows}</table>" if rows else "<p>None.</p>"


def _refs(refs: tuple[str, ...]) -> str:
    return "<br>".join(f'<code class="ref">{_e(r)}</code>' for r in refs)


def _trail(t: Mapping[str, Any]) -> str:
    """The provenance trail: each differential, how its items moved, and the findings (linked) that moved it."""
    if not has_provenance(t):
        return ""
    by_id = {f.id: f for f in findings_of(t)}
    steps = []
    for step in trail_steps(t):
        items = []
        for item in step.items:
            css = " ".join(c for c in (item.change if item.change in ("up", "down") else "",
                                       "kept" if item.kept else "") if c)
            items.append(f'<span class="{css}">{_e(item_text(item))}</span>' if css else _e(item_text(item)))
        body = ", ".join(items) or "no diagnosis listed"
        if step.dropped:
            body += "; dropped " + ", ".join(
                _e(name) + (f" (was {p:.0%})" if p is not None else "") for name, p in step.dropped)
        if step.moved_by:
            moved = "moved by " + ", ".join(
                (f'<a href="#finding-{_e(fid)}">{_e(finding_label(fid, by_id))}</a>' if fid in by_id
                 else _e(finding_label(fid, by_id))) for fid in step.moved_by)
        else:
            moved = "no finding named as the cause"
        first = ", first differential" if step.first else ""
        steps.append(f'<li><b>Turn {_e(step.turn)}</b> <span class="by">({_e(step.by)}{first})</span>: {body}'
                     f'<div class="moved">{moved}</div></li>')
    inner = "".join(steps) or "<li>No differential recorded.</li>"
    return f'<h2>Provenance trail</h2><ol class="trail">{inner}</ol>'


def _status(ok: bool) -> str:
    return "ok" if ok else "failed"


def _panel(t: Mapping[str, Any]) -> str:
    turns = panel_turns(t)
    if not turns:
        return ""
    parts = ["<h2>Panel deliberation</h2>"]
    for turn in turns:
        rows = "".join(
            f'<tr><td>{_e(r.label)}</td><td class="{_status(r.ok)}">{_status(r.ok)}</td><td>{_e(r.summary)}</td></tr>'
            for r in turn.roles)
        parts.append(f"<h3>Turn {_e(turn.turn)}</h3>")
        if rows:
            parts.append(f"<table><tr><th>role</th><th>result</th><th>said</th></tr>{rows}</table>")
        if turn.consensus is not None:
            parts.append(f"<p><b>Consensus: {_e(turn.consensus)}</b> ({_e(turn.rationale)})</p>")
        if turn.skipped:
            parts.append("<p>Skipped: " + "; ".join(_e(s) for s in turn.skipped) + "</p>")
    return "".join(parts)


def _cost(t: Mapping[str, Any]) -> str:
    cost = cost_of(t)
    if cost is None:
        return ""
    budget = f", budget {_e(cost.budget)}" if cost.budget else ""
    parts = [(f"<h2>Cost</h2><p>Total <b>{_e(cost.total)}</b>: {_e(visits_text(cost.visits))}, tests "
              f"{_e(cost.tests_total)}{budget}.</p>")]
    if cost.rows:
        rows = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in cost.rows)
        parts.append("<table><tr><th>turn</th><th>kind</th><th>ordered as</th><th>fee-table name</th><th>price</th>"
                     f"<th>matched</th></tr>{rows}</table>")
    if cost.unmatched:
        parts.append("<p>Unmatched tests (charged the default price): "
                     + ", ".join(_e(n) for n in cost.unmatched) + "</p>")
    return "".join(parts)


def _safety(t: Mapping[str, Any]) -> str:
    parts = []
    blocked = blocked_of(t)
    if blocked:
        parts.append("<h2>Blocked orders</h2><ul>" + "".join(f"<li>{_e(line)}</li>" for line in blocked) + "</ul>")
    approvals = approvals_of(t)
    if approvals:
        rows = "".join(f"<tr><td>{_e(a.turn)}</td><td>{_e(a.action)}</td><td>{_e(a.text)}</td><td>{_e(a.reasons)}</td>"
                       f"<td>{_e(a.decision)}</td></tr>" for a in approvals)
        parts.append("<h2>Clinician approvals</h2><table><tr><th>turn</th><th>action</th><th>text</th>"
                     f"<th>why it needed approval</th><th>decision</th></tr>{rows}</table>")
    return "".join(parts)


def _differential(t: Mapping[str, Any]) -> str:
    differentials = _list(t.get("differentials"))
    if not differentials:
        return "<p>None recorded.</p>"
    last = differentials[-1]
    items = []
    for item in _list(last.get("items")):
        p = item.get("probability")
        share = f"{p:.0%}" if isinstance(p, int | float) and not isinstance(p, bool) else "?"
        items.append(f"<li>{_e(item.get('diagnosis'))}: {share}</li>")
    return f"<p>At turn {_e(last.get('turn'))}:</p><ul>{''.join(items)}</ul>"


def _totals(t: Mapping[str, Any]) -> str:
    totals = _map(t.get("totals"))
    line = (f"<p>{_e(totals.get('turns', 0))} turns ({_e(totals.get('questions', 0))} questions, "
            f"{_e(totals.get('tests', 0))} tests); {_e(totals.get('input_tokens', 0))} prompt + "
            f"{_e(totals.get('output_tokens', 0))} completion tokens; {_num(totals.get('model_seconds', 0.0))} s in "
            f"models, {_num(t.get('wall_seconds', 0.0))} s wall.</p>")
    rows = "".join(
        f"<tr><td>{_e(role)}</td><td>{_e(_map(b).get('calls'))}</td><td>{_e(_map(b).get('input_tokens'))}</td>"
        f"<td>{_e(_map(b).get('output_tokens'))}</td><td>{_num(_map(b).get('seconds'))}</td></tr>"
        for role, b in _map(totals.get("per_role")).items())
    table = ("<table><tr><th>role</th><th>calls</th><th>prompt tokens</th><th>completion tokens</th>"
             f"<th>seconds</th></tr>{rows}</table>") if rows else ""
    return line + table


def _images(t: Mapping[str, Any]) -> str:
    """The case's images by id, source and sha256 (a transcript never holds bytes), what was missing, each read."""
    images = _map(t.get("images"))
    refs, reads = _list(images.get("refs")), _list(images.get("reads"))
    missing = [str(m) for m in images.get("missing") or []] if isinstance(images.get("missing"), list) else []
    if not (refs or reads or missing):
        return ""
    status = images.get("status")
    meaning = IMAGE_STATUS_TEXT.get(status, "?") if isinstance(status, str | None) else "?"
    parts = [(f"<h2>Images</h2><p>Status: <b>{_e(status or 'none')}</b> ({_e(meaning)}); "
              f"setting: {_e(images.get('setting'))}</p>")]
    if refs:
        rows = "".join(f"<tr><td>{_e(r.get('id'))}</td><td>{_e(r.get('source'))}</td><td>{_e(r.get('media_type'))}"
                       f"</td><td>{_e(r.get('width'))}x{_e(r.get('height'))}</td><td><code>{_e(r.get('sha256'))}"
                       "</code></td></tr>" for r in refs)
        parts.append("<table><tr><th>image</th><th>source</th><th>type</th><th>size</th><th>sha256</th></tr>"
                     f"{rows}</table>")
    if missing:
        parts.append("<p>Missing:</p><ul>" + "".join(f"<li>{_e(m)}</li>" for m in missing) + "</ul>")
    if reads:
        rows = "".join(f"<tr><td>{_e(r.get('turn'))}</td><td>{_e(r.get('image_id'))}</td><td>{_e(r.get('status'))}"
                       f"</td><td>{_e(', '.join(str(s) for s in r.get('sources') or []))}</td>"
                       f"<td>{_e(r.get('question'))}</td></tr>" for r in reads)
        parts.append("<table><tr><th>turn</th><th>image</th><th>status</th><th>sources</th><th>question</th></tr>"
                     f"{rows}</table>")
    return "".join(parts)


def render_transcript_html(transcript: Mapping[str, Any]) -> str:
    """A standalone page for one transcript: case, models, protocol, images, dialogue, findings, the differential
    and its provenance trail, the panel's deliberation, cost, blocked orders and approvals (when recorded), outcome,
    totals."""
    t = transcript
    case, outcome = _map(t.get("case")), _map(t.get("outcome"))
    title = f"Consultation {t.get('attempt') or case.get('id') or t.get('thread_id') or ''}".strip()
    models = ", ".join(f"{role} = {spec}" for role, spec in _map(t.get("models")).items()) or "not recorded"
    header = _facts([
        ("Case", f"{case.get('id', '?')} ({case.get('dataset', '?')})"), ("Protocol", t.get("protocol", "?")),
        ("Measurement mode", t.get("environment", "?")), ("Bias", t.get("bias", "none")),
        ("Repeat / seed", f"{t.get('repeat', '?')} / {t.get('seed', '?')}"), ("Turn budget", t.get("max_turns")),
        *([("Doctor", doctor)] if (doctor := doctor_text(t)) else []),
        ("Models", models), ("Run", t.get("run_id", "?")),
    ])
    leak_sources = outcome.get("leak_sources") if isinstance(outcome.get("leak_sources"), list) else []
    leak = "no"
    if outcome.get("leak"):
        leak = "yes" + (f" ({', '.join(str(s) for s in leak_sources)})" if leak_sources else "")
    outcome_html = (
        f"<dl><dt>Final diagnosis</dt><dd>{_e(outcome.get('final_diagnosis') or 'none')}</dd>"
        f"<dt>Ended by</dt><dd>{_e(outcome.get('ended_by'))}</dd>"
        f"<dt>Correct diagnosis</dt><dd>{_e(case.get('correct_diagnosis') or 'unknown')}</dd>"
        f"<dt>Verdict</dt><dd>{_verdict(t)}</dd>"
        f"<dt>Diagnosis revealed in a test result</dt><dd>{_e(leak)}</dd></dl>"
    )
    body = (
        f'<p><a href="../report.html">&larr; report</a></p><h1>{_e(title)}</h1>{header}'
        f"<h2>Objective</h2><p>{_e(case.get('objective', ''))}</p>{_images(t)}"
        f"<h2>Dialogue</h2>{_dialogue(t)}<h2>Findings</h2>{_findings(t)}"
        f"<h2>Last differential</h2>{_differential(t)}{_trail(t)}{_panel(t)}{_cost(t)}{_safety(t)}"
        f"<h2>Outcome</h2>{outcome_html}{_rubric(t)}"
        f"<h2>Totals</h2>{_totals(t)}"
    )
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_e(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
