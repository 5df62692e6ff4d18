"""Transcripts of finished consultations: one JSON document (for programs) and one Markdown page (for people).

The JSON holds everything needed to audit a consultation: the case, which model played each role, every turn with
its action, tokens and seconds, the findings with their sources, the differential over time, the images (refs with
their sha256 digests, why any were missing, each read and the image status), the final diagnosis, the judge's verdict
and the totals. Secrets and image bytes never reach it: model specs are written, API keys are not.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simulations.trail import (
    approvals_of,
    blocked_of,
    cost_of,
    doctor_text,
    findings_of,
    has_provenance,
    one_line,
    panel_turns,
    step_text,
    trail_steps,
    visits_text,
)

TRANSCRIPT_VERSION = 1

_ROLE_OF_SPEAKER = {"doctor": "reasoning", "patient": "patient", "measurement": "measurement",
                    "clinician": "clinician", "record": "record", "imaging": "imaging"}


def totals_of(
    dialogue: list[Mapping[str, Any]],
    judge_usage: Mapping[str, Any] | None,
    image_reads: list[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Tokens, seconds and calls summed per role, and the counts of questions, tests and image requests.

    With ``image_reads`` (the graph's read entries) the imaging role is counted from them: a read made at intake
    has no dialogue entry, and a read the doctor asked for has both, so counting the dialogue would miss or double.
    """
    per_role: dict[str, dict[str, float]] = defaultdict(
        lambda: {"input_tokens": 0, "output_tokens": 0, "seconds": 0.0, "calls": 0}
    )
    usage = [entry for entry in dialogue if image_reads is None or entry["role"] != "imaging"]
    usage += [{**read, "role": "imaging"} for read in image_reads or []]
    for entry in usage:
        role = _ROLE_OF_SPEAKER.get(entry["role"], entry["role"])
        bucket = per_role[role]
        bucket["input_tokens"] += entry.get("input_tokens", 0) or 0
        bucket["output_tokens"] += entry.get("output_tokens", 0) or 0
        bucket["seconds"] += entry.get("seconds", 0.0) or 0.0
        bucket["calls"] += entry.get("calls", 0) or 0
    if judge_usage:
        bucket = per_role["judge"]
        for key in ("input_tokens", "output_tokens", "seconds", "calls"):
            bucket[key] += judge_usage.get(key, 0) or 0
    doctor_turns = [e for e in dialogue if e["role"] == "doctor"]
    return {
        "turns": len(doctor_turns),
        "questions": sum(1 for e in doctor_turns if e.get("action") == "ask"),
        "tests": sum(1 for e in doctor_turns if e.get("action") == "test"),
        "record_lookups": sum(1 for e in doctor_turns if e.get("action") == "record"),
        "image_requests": sum(1 for e in doctor_turns if e.get("action") == "image"),
        "degraded_turns": sum(1 for e in doctor_turns if e.get("degraded")),
        "input_tokens": int(sum(b["input_tokens"] for b in per_role.values())),
        "output_tokens": int(sum(b["output_tokens"] for b in per_role.values())),
        "model_seconds": round(sum(b["seconds"] for b in per_role.values()), 3),
        "per_role": {role: {k: (round(v, 3) if k == "seconds" else int(v)) for k, v in b.items()}
                     for role, b in per_role.items()},
    }


def _atomic_write(path: Path, text: str) -> None:
    # Write beside the target and rename, so a crash never leaves a half-written transcript.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_transcript(out_dir: Path, transcript: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``transcript.json`` and ``transcript.md`` into ``out_dir`` and return both paths."""
    json_path = out_dir / "transcript.json"
    md_path = out_dir / "transcript.md"
    _atomic_write(json_path, json.dumps(transcript, indent=2, ensure_ascii=False) + "\n")
    _atomic_write(md_path, render_markdown(transcript))
    return json_path, md_path


def _verdict_text(verdict: Mapping[str, Any] | None) -> str:
    if not verdict:
        return "not judged (no correct diagnosis known)"
    correct = verdict.get("correct")
    word = {True: "correct", False: "incorrect", None: "unjudged (the judge's answer could not be read)"}[correct]
    return f"{word} (method: {verdict.get('method', '?')})"


def _rubric_lines(rubric: Mapping[str, Any] | None) -> list[str]:
    if not rubric:
        return []
    scores = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in (rubric.get("scores") or {}).items())
    total = rubric.get("total")
    verdict = {True: "correct", False: "incorrect", None: "unreadable"}[rubric.get("correct")]
    return [f"- **Rubric:** {total if total is not None else '?'}/5, {verdict} ({scores or rubric.get('method')})"]


IMAGE_STATUS_TEXT = {
    None: "the case has no image",
    "read": "read by the imaging model",
    "not_requested": "available, but the doctor never asked for a read",
    "unavailable": "image unavailable: the consultation ran without it",
    "no_reader": "available, but no imaging model was configured",
    "failed": "every read failed",
}


def _image_lines(images: Any) -> list[str]:
    """The images section: each ref by id, source and digest (never bytes), what was missing, and every read."""
    if not isinstance(images, Mapping) or not (images.get("refs") or images.get("missing") or images.get("reads")):
        return []
    status = images.get("status")
    lines = ["## Images", "", f"- **Status:** {status or 'none'} ({IMAGE_STATUS_TEXT.get(status, '?')})",
             f"- **Setting:** {images.get('setting')}"]
    for ref in images.get("refs") or []:
        if isinstance(ref, Mapping):
            lines.append(f"- `{ref.get('id')}`: {ref.get('source')} ({ref.get('media_type')}, {ref.get('width')}x"
                         f"{ref.get('height')}, sha256 `{ref.get('sha256')}`)")
    lines += [f"- **Missing:** {reason}" for reason in images.get("missing") or []]
    reads = [r for r in images.get("reads") or [] if isinstance(r, Mapping)]
    if reads:
        lines += ["", "| turn | image | status | sources | question |", "|---|---|---|---|---|"]
        for read in reads:
            question = str(read.get("question") or "").replace("|", "\\|").replace("\n", " ")
            sources = ", ".join(str(s) for s in read.get("sources") or [])
            lines.append(f"| {read.get('turn')} | {read.get('image_id')} | {read.get('status')} | {sources} | "
                         f"{question} |")
    return [*lines, ""]


def _md(text: Any, limit: int = 600) -> str:
    # One line of Markdown: case, model and record text is data, and Markdown viewers render raw HTML.
    return one_line(text, limit).replace("<", "&lt;").replace(">", "&gt;")


def _md_cell(text: Any, limit: int = 200) -> str:
    return _md(text, limit).replace("|", "\\|")


def _provenance_lines(t: Mapping[str, Any]) -> list[str]:
    """Each differential with its changes and the findings that moved it, then every finding by id and source."""
    if not has_provenance(t):
        return []
    findings = findings_of(t)
    by_id = {f.id: f for f in findings}
    lines = ["## Provenance trail", ""]
    lines += [f"- {_md(step_text(step, by_id), 2000)}" for step in trail_steps(t)] or ["- No differential recorded."]
    lines += ["", "### Findings", ""]
    for f in findings:
        refs = f" — refs: {', '.join(f'`{_md(r, 200)}`' for r in f.refs)}" if f.refs else ""
        lines.append(f"- **{_md(f.id, 16)}** (turn {_md(f.turn, 8)}, {_md(f.source, 120)}): {_md(f.text, 300)}{refs}")
    if not findings:
        lines.append("- None.")
    return [*lines, ""]


def _panel_lines(t: Mapping[str, Any]) -> list[str]:
    turns = panel_turns(t)
    if not turns:
        return []
    lines = ["## Panel deliberation", ""]
    for turn in turns:
        lines += [f"**Turn {_md(turn.turn, 8)}**", ""]
        lines += [f"- {_md(r.label, 40)}: {'ok' if r.ok else 'FAILED'} — {_md(r.summary)}" for r in turn.roles]
        if turn.consensus is not None:
            lines.append(f"- **consensus → {_md(turn.consensus)}** ({_md(turn.rationale)})")
        lines += [f"- skipped: {_md(s)}" for s in turn.skipped]
        lines.append("")
    return lines


def _cost_lines(t: Mapping[str, Any]) -> list[str]:
    cost = cost_of(t)
    if cost is None:
        return []
    budget = f", budget {cost.budget}" if cost.budget else ""
    lines = ["## Cost", "",
             f"Total **{cost.total}**: {visits_text(cost.visits)}, tests {cost.tests_total}{budget}.", ""]
    if cost.rows:
        lines += ["| turn | kind | ordered as | fee-table name | price | matched |", "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in cost.rows]
        lines.append("")
    if cost.unmatched:
        lines += [f"Unmatched tests (charged the default price): {', '.join(_md(n, 120) for n in cost.unmatched)}", ""]
    return lines


def _safety_lines(t: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    blocked = blocked_of(t)
    if blocked:
        lines += ["## Blocked orders", "", *[f"- {_md(line, 2000)}" for line in blocked], ""]
    approvals = approvals_of(t)
    if approvals:
        lines += ["## Clinician approvals", "", "| turn | action | text | why it needed approval | decision |",
                  "|---|---|---|---|---|"]
        lines += [f"| {_md_cell(a.turn)} | {_md_cell(a.action)} | {_md_cell(a.text)} | {_md_cell(a.reasons)} | "
                  f"{_md_cell(a.decision)} |" for a in approvals]
        lines.append("")
    return lines


def render_markdown(t: Mapping[str, Any]) -> str:
    """A readable page: the case, the dialogue turn by turn, the differential and its provenance trail, the panel's
    deliberation, cost, blocked orders and approvals (when recorded), the outcome and the totals."""
    doctor = doctor_text(t)
    lines = [f"# Consultation {t.get('thread_id', '')}", ""]
    lines += [
        f"- **Case:** {t['case']['id']}",
        f"- **Protocol:** {t.get('protocol', 'clinicflow')}",
        *[f"- **{side.capitalize()} bias:** {name}" for side, name in (t.get("biases") or {}).items() if name],
        f"- **Environment:** {t.get('environment', '?')}",
        f"- **Turn budget:** {t.get('max_turns')}",
        *([f"- **Doctor:** {_md(doctor)}"] if doctor else []),
        "- **Models:** " + ", ".join(f"{role} = `{spec}`" for role, spec in t.get("models", {}).items()),
        "",
        "## Objective",
        "",
        t["case"].get("objective", ""),
        "",
    ]
    if t.get("record_summary"):
        # Record text is quoted, never rendered as markdown structure: it is data from someone else's system.
        summary = t["record_summary"]
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", summary)), default=0))
        lines += [f"## Health record summary ({t.get('record')})", "", f"{fence}text", summary, fence, ""]
    lines += _image_lines(t.get("images"))
    lines += ["## Dialogue", ""]
    for entry in t.get("dialogue", []):
        who = entry["role"].capitalize()
        action = f" [{entry['action']}]" if entry.get("action") else ""
        cost = f"{entry.get('output_tokens', 0)} tokens, {entry.get('seconds', 0.0):.1f} s"
        flag = " (degraded: the model's reply was unusable)" if entry.get("degraded") else ""
        lines.append(f"**Turn {entry['turn']} · {who}{action}** ({cost}){flag}")
        lines.append("")
        lines.append("> " + entry["text"].replace("\n", "\n> "))
        lines.append("")
    if t.get("differentials"):
        last = t["differentials"][-1]
        lines += ["## Last differential", "", f"(turn {last['turn']})", ""]
        lines += [f"- {item['diagnosis']}: {item['probability']:.0%}" for item in last["items"]]
        lines.append("")
    lines += _provenance_lines(t) + _panel_lines(t) + _cost_lines(t) + _safety_lines(t)
    outcome = t.get("outcome", {})
    lines += [
        "## Outcome",
        "",
        f"- **Final diagnosis:** {outcome.get('final_diagnosis')}",
        f"- **Ended by:** {outcome.get('ended_by')}",
        f"- **Correct diagnosis:** {t['case'].get('correct_diagnosis') or 'unknown'}",
        f"- **Verdict:** {_verdict_text(t.get('verdict'))}",
        *_rubric_lines(t.get("rubric")),
        f"- **Diagnosis revealed in a test result:** {'yes' if outcome.get('leak') else 'no'}",
        "",
        "## Totals",
        "",
    ]
    totals = t.get("totals", {})
    lines.append(
        f"{totals.get('turns', 0)} turns ({totals.get('questions', 0)} questions, {totals.get('tests', 0)} tests), "
        f"{totals.get('input_tokens', 0)} prompt + {totals.get('output_tokens', 0)} completion tokens, "
        f"{totals.get('model_seconds', 0.0):.1f} s in models, {t.get('wall_seconds', 0.0):.1f} s wall."
    )
    lines.append("")
    lines += ["| role | calls | prompt tokens | completion tokens | seconds |", "|---|---|---|---|---|"]
    for role, b in totals.get("per_role", {}).items():
        lines.append(f"| {role} | {b['calls']} | {b['input_tokens']} | {b['output_tokens']} | {b['seconds']:.1f} |")
    lines.append("")
    return "\n".join(lines)
