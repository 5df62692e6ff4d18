"""``bench report``: read a run directory and write ``report.md``, ``report.html`` and one HTML page per transcript.

The report is built once as a format-neutral document (``report_doc``) and rendered twice, so the Markdown and
HTML reports always carry the same numbers. Every report names the protocol and the measurement mode up front:
a number without them cannot be compared with anything. A missing or unreadable transcript is listed among the
problems, never fatal: the report of a half-finished or damaged run is still worth reading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulations.bench.metrics import GroupMetrics, RunMetrics, summarize
from simulations.bench.records import RUBRIC_CRITERIA, RUBRIC_PASS, AttemptResult
from simulations.bench.report_doc import (
    Block,
    BulletList,
    Cell,
    Heading,
    KeyValues,
    Link,
    Paragraph,
    Plot,
    Table,
    interval,
    number,
    percent,
    render_markdown,
)
from simulations.bench.report_html import render_html
from simulations.bench.rundir import TRANSCRIPTS_DIR, LoadedRun, read_run
from simulations.bench.transcript_html import render_transcript_html
from simulations.transcript import _atomic_write

__all__ = ["ReportFiles", "build_document", "write_report"]

LEAK_EXPLANATION = (
    "A leak is an attempt in which a test result shown to the doctor contained the correct diagnosis itself "
    "(for example a biopsy 'consistent with X'): the answer was handed over rather than worked out. A leak-prone "
    "case is one whose own exam or test data contains its diagnosis, so ordering the right test gives it away."
)


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    transcripts: int  # transcript pages written
    problems: list[str] = field(default_factory=list)


def _header(run: LoadedRun, metrics: RunMetrics) -> list[Block]:
    c, env = run.config, run.environment
    expected = len(c.case_ids) * len(c.biases) * c.repeats
    hit_rate = metrics.overall.cache_hit_rate
    cache = "no model calls recorded" if hit_rate is None else (
        f"{percent(hit_rate)} ({metrics.overall.cache_hits} hits, {metrics.overall.cache_misses} misses)")
    return [
        Heading(f"Benchmark report: {run.run_id}", 1),
        KeyValues([("Protocol", c.protocol), ("Measurement mode", c.measurement_mode)], prominent=True),
        KeyValues([
            ("Models", ", ".join(f"{role} = {spec}" for role, spec in c.models.items()) or "none recorded"),
            ("Turn budget (max_turns)", str(c.max_turns)),
            ("Biases", ", ".join(c.biases)),
            ("Repeats", str(c.repeats)),
            ("Seed", str(c.seed)),
            ("Temperature", str(c.temperature)),
            ("Rubric judge", f"on ({len(RUBRIC_CRITERIA)} criteria, {RUBRIC_PASS}+ is correct)" if c.rubric else "off"),
            *([("Images", (f"setting {c.image_setting}; folder {env.image_dir or 'none'}; "
                           f"cache {env.image_cache or 'none'}"))]
              if env.image_dir or env.image_cache or c.models.get("imaging") else []),
            ("Attempts", (f"{metrics.overall.attempts} recorded of {expected} planned "
                         f"({len(c.case_ids)} cases x {len(c.biases)} bias conditions x {c.repeats} repeats)")),
            ("Cache hit rate", cache),
            ("Created", env.created_at + (f" (resumed {len(run.resumed)} times)" if run.resumed else "")),
            ("Python / platform", f"{env.python} / {env.platform}"),
            ("Packages", ", ".join(f"{name} {ver}" for name, ver in env.packages.items()) or "none recorded"),
        ]),
        Heading("Datasets", 3),
        Table(["dataset", "path", "sha256", "cases"],
              [[d.name, d.path or "(built in)", d.sha256 or "-", str(d.cases)] for d in c.datasets]),
    ]


def _headline(g: GroupMetrics) -> list[Block]:
    rows: list[list[Cell]] = [
        ["accuracy (yes/no judge)", percent(g.accuracy), interval(g.accuracy_ci, g.judged), f"{g.correct}/{g.judged}"],
    ]
    if g.accuracy_boot_ci is not None:
        rows.append(["accuracy, bootstrap across repeats", percent(g.accuracy), interval(g.accuracy_boot_ci), ""])
    rows += [
        ["rubric accuracy", percent(g.rubric_accuracy), interval(g.rubric_ci, g.rubric_judged),
         f"{g.rubric_correct}/{g.rubric_judged}"],
        ["leak rate", percent(g.leak_rate), interval(g.leak_ci, g.ok), f"{g.leaks}/{g.ok}"],
        ["errors", str(g.errors), "", f"of {g.attempts} attempts"],
        ["unjudged (no readable verdict)", str(g.unjudged), "", f"of {g.ok} finished"],
        ["mean turns / questions / tests",
         f"{number(g.mean_turns)} / {number(g.mean_questions)} / {number(g.mean_tests)}", "", ""],
        ["mean wall / model seconds per attempt",
         f"{number(g.mean_wall_seconds)} / {number(g.mean_model_seconds)}", "", ""],
    ]
    return [Heading("Headline"), Table(["metric", "value", "95% interval", "n"], rows),
            Plot("accuracy", "Accuracy overall, per dataset and per bias condition, with 95% Wilson intervals.")]


def _group_table(label: str, groups: dict[str, GroupMetrics]) -> Table:
    rows: list[list[Cell]] = [
        [name, str(g.attempts), str(g.judged), str(g.correct), percent(g.accuracy), interval(g.accuracy_ci, g.judged),
         percent(g.rubric_accuracy), str(g.errors), str(g.unjudged), str(g.leaks)]
        for name, g in groups.items()
    ]
    return Table([label, "attempts", "judged", "correct", "accuracy", "95% CI", "rubric", "errors", "unjudged",
                  "leaks"], rows)


def _leaks(g: GroupMetrics) -> list[Block]:
    return [
        Heading("Leaks"),
        Paragraph(LEAK_EXPLANATION, "note"),
        KeyValues([
            ("Leak-prone cases", str(g.leak_prone_cases)),
            ("Leaked attempts", f"{g.leaks} of {g.ok} finished"),
            ("Leak rate", f"{percent(g.leak_rate)} (95% CI {interval(g.leak_ci, g.ok)})"),
            ("Accuracy without leaked attempts", (f"{percent(g.accuracy_without_leaks)} "
             f"({g.correct_without_leaks}/{g.judged_without_leaks}, 95% CI "
             f"{interval(g.accuracy_without_leaks_ci, g.judged_without_leaks)})")),
        ]),
        Plot("leaks", "Leak rate over finished attempts, and accuracy with and without the leaked attempts."),
    ]


IMAGES_EXPLANATION = (
    "Image status per finished attempt of a case with an image: 'read' (the imaging model read it), "
    "'not_requested' (the doctor could ask for a read and never did), 'unavailable' (the image could not be had: "
    "the attempt ran without it), 'no_reader' (no imaging model), 'failed' (every read failed). Unavailable "
    "attempts are left out of the image-aware accuracy below."
)


def _images(run: LoadedRun, g: GroupMetrics) -> list[Block]:
    if not g.image_statuses:
        return []
    rows: list[list[Cell]] = [[status, str(count)] for status, count in sorted(g.image_statuses.items())]
    blocks: list[Block] = [
        Heading("Images"),
        Paragraph(IMAGES_EXPLANATION, "note"),
        KeyValues([
            ("Image setting", run.config.image_setting),
            ("Imaging model", run.config.models.get("imaging") or "none"),
            ("Image reads", str(g.image_reads)),
            ("Accuracy without image-unavailable attempts", (
                f"{percent(g.accuracy_without_unavailable)} ({g.correct_without_unavailable}/"
                f"{g.judged_without_unavailable}, 95% CI "
                f"{interval(g.accuracy_without_unavailable_ci, g.judged_without_unavailable)})")),
        ]),
        Table(["image status", "attempts"], rows),
    ]
    unavailable = g.image_statuses.get("unavailable", 0)
    if unavailable:
        blocks.append(Paragraph(f"{_plural(unavailable, 'attempt')} ran without the case's image (image "
                                "unavailable): see each transcript for the reason.", "warning"))
    return blocks


def _turns_and_tokens(metrics: RunMetrics) -> list[Block]:
    g = metrics.overall
    turn_rows: list[list[Cell]] = [[label, str(n), str(k), percent(k / n)] for label, n, k in metrics.by_turns]
    token_rows: list[list[Cell]] = [[role, number(tokens, 0)] for role, tokens in g.tokens_per_case.items()]
    token_rows.append(["all roles (prompt + completion)",
                       number(None if g.mean_input_tokens is None else g.mean_input_tokens + (g.mean_output_tokens
                                                                                             or 0), 0)])
    return [
        Heading("Turns used"),
        Plot("turns", "How many doctor turns the finished attempts used."),
        Heading("Accuracy by turns used", 3),
        Table(["turns", "judged", "correct", "accuracy"], turn_rows) if turn_rows
        else Paragraph("No judged attempts yet.", "note"),
        Plot("accuracy-by-turns", "Accuracy of judged attempts by the number of turns they used (95% Wilson)."),
        Heading("Tokens per case by role"),
        Paragraph("Mean prompt plus completion tokens per finished attempt.", "note"),
        Table(["role", "tokens per case"], token_rows),
        Plot("tokens", "Mean tokens (prompt + completion) per finished attempt, by role."),
    ]


def _upstream(run: LoadedRun, g: GroupMetrics) -> list[Block]:
    if run.config.protocol != "agentclinic" and not g.upstream_judged:
        return []
    if not g.upstream_judged:
        text = "No verdict recorded what upstream's exact-'yes' rule would have said."
    else:
        text = (f"Upstream's moderator rule (only an exact lower-case 'yes' counts) would have scored "
                f"{g.upstream_disagreements} of {g.upstream_judged} verdicts differently: it counts "
                f"{g.upstream_correct} of those {g.upstream_judged} correct.")
    return [Heading("Upstream's verdict rule"), Paragraph(text)]


def _errors(results: list[AttemptResult], problems: list[str]) -> list[Block]:
    blocks: list[Block] = []
    failed = [r for r in results if r.status == "error"]
    if failed:
        items = [f"{r.attempt}: " + (f"{r.error.type}: {r.error.message}" if r.error else "no reason recorded")
                 for r in failed]
        blocks += [Heading("Errors"),
                   Paragraph(f"{_plural(len(failed), 'attempt')} ended in an error. They are not in the accuracy "
                             "denominators and are retried when the run is resumed (run the same command again).",
                             "warning"),
                   BulletList(items)]
    if problems:
        blocks += [Heading("Problems reading the run"), BulletList(problems)]
    return blocks


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _verdict_word(r: AttemptResult) -> str:
    if r.status == "error":
        return "error"
    return {True: "correct", False: "incorrect", None: "unjudged"}[r.correct]


def _cases(run: LoadedRun, pages: dict[str, str]) -> list[Block]:
    rows: list[list[Cell]] = []
    classes: list[str] = []
    for r in run.results:
        stem = Path(r.transcript).stem if r.transcript else None
        md = run.path / TRANSCRIPTS_DIR / f"{stem}.md"
        link: Cell = "-" if stem is None else Link(
            stem, f"{TRANSCRIPTS_DIR}/{stem}.md" if md.is_file() else None,
            f"{TRANSCRIPTS_DIR}/{pages[r.attempt]}.html" if r.attempt in pages else None)
        rubric = f"{r.rubric.total}/{len(RUBRIC_CRITERIA)}" if r.rubric and r.rubric.total is not None else "-"
        leak = "yes" if r.leak else ("prone" if r.case_leak_prone else "")
        image = "" if r.image_status is None else f"{r.image_status} ({r.image_reads})"
        rows.append([r.attempt, r.dataset, r.bias, str(r.repeat), r.final_diagnosis or "-", r.correct_diagnosis,
                     _verdict_word(r), rubric, str(r.turns), str(r.tests), leak, image,
                     f"{r.input_tokens + r.output_tokens:,}", link])
        classes.append(_verdict_word(r))
    return [
        Heading("Cases"),
        Paragraph("One row per attempt (the latest result of each). Leak: 'yes' when the doctor was shown the "
                  "diagnosis, 'prone' when the case's data contains it but it was not shown. Image: the image "
                  "status and, in brackets, the image reads made (empty for a case without an image).", "note"),
        Table(["attempt", "dataset", "bias", "repeat", "final diagnosis", "correct diagnosis", "verdict", "rubric",
               "turns", "tests", "leak", "image", "tokens", "transcript"], rows, id="cases", row_classes=classes),
    ]


def build_document(run: LoadedRun, metrics: RunMetrics, pages: dict[str, str],
                   problems: list[str]) -> list[Block]:
    """The whole report; ``pages`` maps attempt keys to the stems of their transcript HTML pages."""
    g = metrics.overall
    return [
        *_header(run, metrics), *_headline(g),
        Heading("Per dataset"), _group_table("dataset", metrics.by_dataset),
        Heading("Per bias condition"), _group_table("bias", metrics.by_bias),
        *_leaks(g), *_images(run, g), *_turns_and_tokens(metrics), *_upstream(run, g),
        *_errors(run.results, problems),
        *_cases(run, pages),
    ]


def _transcript_pages(run: LoadedRun, problems: list[str]) -> dict[str, str]:
    """Write transcripts/<name>.html for every readable transcript; return attempt key -> name."""
    pages: dict[str, str] = {}
    for r in run.results:
        if not r.transcript:
            continue
        relative = Path(r.transcript)
        if relative.parent != Path(TRANSCRIPTS_DIR) or relative.suffix != ".json":
            problems.append(f"{r.attempt}: transcript path {r.transcript!r} is not transcripts/<name>.json; skipped")
            continue
        try:
            data: Any = json.loads((run.path / relative).read_text(encoding="utf-8"))
        except FileNotFoundError:
            problems.append(f"{r.attempt}: transcript {r.transcript} is missing")
            continue
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{r.attempt}: transcript {r.transcript} cannot be read: {exc}")
            continue
        if not isinstance(data, dict):
            problems.append(f"{r.attempt}: transcript {r.transcript} is not a JSON object")
            continue
        _atomic_write(run.path / TRANSCRIPTS_DIR / f"{relative.stem}.html", render_transcript_html(data))
        pages[r.attempt] = relative.stem
    return pages


def write_report(run_dir: Path) -> ReportFiles:
    """Write report.md, report.html and the transcript pages of the run in ``run_dir``.

    Raises ``RunDirError`` (``NotARunError``) when the directory cannot be read as a run.
    """
    run = read_run(Path(run_dir))
    problems = list(run.problems)
    metrics = summarize(run.results, seed=run.config.seed)
    pages = _transcript_pages(run, problems)
    blocks = build_document(run, metrics, pages, problems)
    markdown, html = run.path / "report.md", run.path / "report.html"
    _atomic_write(markdown, render_markdown(blocks))
    _atomic_write(html, render_html(blocks, metrics, title=f"Benchmark report: {run.run_id}"))
    return ReportFiles(markdown=markdown, html=html, transcripts=len(pages), problems=problems)
