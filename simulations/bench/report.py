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
    score,
    usd,
)
from simulations.bench.report_html import reliability_plot_id, render_html
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


def _arm_settings(run: LoadedRun) -> list[tuple[str, str]]:
    """The arms and their settings, for runs that compared doctors (a single-doctor run shows nothing new)."""
    c = run.config
    if c.arms == ["single"] and c.budget is None:
        return []
    items = [("Arms", ", ".join(c.arms))]
    if c.budget is not None:
        items.append(("Budget (budgeted arms)", usd(c.budget)))
    if any(arm.endswith(":ensemble") for arm in c.arms):
        items.append(("Ensemble", f"{c.ensemble_members} panels, {c.ensemble_aggregate}"))
    return items


def _header(run: LoadedRun, metrics: RunMetrics) -> list[Block]:
    c, env = run.config, run.environment
    arms = len(c.arms)
    expected = len(c.case_ids) * len(c.biases) * c.repeats * arms
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
            *_arm_settings(run),
            ("Attempts", (f"{metrics.overall.attempts} recorded of {expected} planned "
                         f"({len(c.case_ids)} cases x {len(c.biases)} bias conditions x {c.repeats} repeats"
                         + (f" x {arms} arms)" if arms > 1 else ")"))),
            ("Cache hit rate", cache),
            ("Created", env.created_at + (f" (resumed {len(run.resumed)} times)" if run.resumed else "")),
            ("Python / platform", f"{env.python} / {env.platform}"),
            ("Packages", ", ".join(f"{name} {ver}" for name, ver in env.packages.items()) or "none recorded"),
        ]),
        Heading("Datasets", 3),
        Table(["dataset", "path", "sha256", "cases"],
              [[d.name, d.path or "(built in)", d.sha256 or "-", str(d.cases)] for d in c.datasets]),
    ]


def _cost_rows(g: GroupMetrics) -> list[list[Cell]]:
    return [
        ["mean / median cost per case", f"{usd(g.mean_cost)} / {usd(g.median_cost)}", "", f"{g.ok} finished"],
        ["mean visits / test cost per case", f"{number(g.mean_cost_visits)} / {usd(g.mean_cost_tests)}", "", ""],
        ["unmatched tests (charged the default price)", str(g.unmatched_tests), "", ""],
        ["orders blocked (contraindication or budget)", str(g.blocked_orders), "", ""],
    ]


def _headline(g: GroupMetrics, has_cost: bool = False) -> list[Block]:
    rows: list[list[Cell]] = [
        ["accuracy (yes/no judge)", percent(g.accuracy), interval(g.accuracy_ci, g.judged), f"{g.correct}/{g.judged}"],
    ]
    if g.accuracy_boot_ci is not None:
        # Clusters are cases: a case's repeats (and its attempts in other arms) are not independent of each other.
        rows.append(["accuracy, bootstrap over cases (a case's attempts together)", percent(g.accuracy),
                     interval(g.accuracy_boot_ci), ""])
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
    if has_cost:
        rows += _cost_rows(g)
    return [Heading("Headline"), Table(["metric", "value", "95% interval", "n"], rows),
            Plot("accuracy", "Accuracy overall, per dataset and per bias condition, with 95% Wilson intervals.")]


def _group_table(label: str, groups: dict[str, GroupMetrics], has_cost: bool = False) -> Table:
    rows: list[list[Cell]] = [
        [name, str(g.attempts), str(g.judged), str(g.correct), percent(g.accuracy), interval(g.accuracy_ci, g.judged),
         percent(g.rubric_accuracy), str(g.errors), str(g.unjudged), str(g.leaks),
         *([usd(g.mean_cost)] if has_cost else [])]
        for name, g in groups.items()
    ]
    return Table([label, "attempts", "judged", "correct", "accuracy", "95% CI", "rubric", "errors", "unjudged",
                  "leaks", *(["mean cost"] if has_cost else [])], rows)


ARMS_EXPLANATION = (
    "An arm is the doctor the attempts ran with: 'single' (the one-node doctor), 'panel' (the diagnostic panel, no "
    "budget) or 'panel:<variant>' (budgeted, instant, questions, ensemble). Cost per case is what the consultation "
    "spent: one visit ($300) per round of questions to the patient, plus each test's fee-table price (a test the "
    "table does not know is charged a default price and counted as unmatched). Costs are over finished attempts. "
    "Over budget counts attempts that ended above the budget they ran under; a budgeted panel must have none."
)


def _arms(metrics: RunMetrics) -> list[Block]:
    """Accuracy and cost per arm, and the accuracy-cost plot; only for runs that recorded a cost or several arms."""
    if not (metrics.has_cost or len(metrics.by_arm) > 1):
        return []
    rows: list[list[Cell]] = [
        [name, str(g.attempts), str(g.judged), str(g.correct), percent(g.accuracy), interval(g.accuracy_ci, g.judged),
         usd(g.mean_cost), usd(g.median_cost), number(g.mean_cost_visits), usd(g.mean_cost_tests),
         str(g.unmatched_tests), str(g.blocked_orders), str(g.over_budget), str(g.panel_failed_roles)]
        for name, g in metrics.by_arm.items()
    ]
    blocks: list[Block] = [
        Heading("Arms"),
        Paragraph(ARMS_EXPLANATION, "note"),
        Table(["arm", "attempts", "judged", "correct", "accuracy", "95% CI", "mean cost", "median cost",
               "mean visits", "mean test cost", "unmatched tests", "blocked orders", "over budget",
               "failed panel roles"], rows, id="arms"),
        Plot("accuracy-cost", "Accuracy against mean cost per case, one point per arm, with 95% Wilson intervals."),
    ]
    over = sum(g.over_budget for g in metrics.by_arm.values())
    if over:
        blocks.append(Paragraph(f"{_plural(over, 'attempt')} ended above the budget it ran under.", "warning"))
    return blocks


CALIBRATION_EXPLANATION = (
    "Whether the final differential's probabilities mean what they say. Each finished attempt with a final "
    "differential is one case; its items plus an implicit 'other' (the probability they leave unclaimed) form the "
    "forecast, and the item naming the correct diagnosis is the one that was right. Brier score: squared error over "
    "the items and 'other' (0 is perfect, 2 the worst); top-1 Brier: the same for the top item alone; log loss: "
    "-ln of the probability given to the right answer (0 is perfect); ECE: the gap between the top item's "
    "probability and how often it was right, averaged over 10 bins; top-1 / top-3: the right diagnosis ranked first "
    "/ among the first three. In the reliability diagram, bars of a well calibrated differential reach the diagonal."
)


def _calibration_row(name: str, g: GroupMetrics) -> list[Cell]:
    c = g.calibration
    if c is None:
        return [name, "0", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", str(g.calibration_left_out)]
    return [name, str(c.n), score(c.brier), score(c.top1_brier), score(c.log_loss), score(c.ece),
            percent(c.top1_accuracy), percent(c.top3_accuracy), str(g.calibration_left_out)]


def _calibration(metrics: RunMetrics) -> list[Block]:
    """Calibration scores overall and per arm, the overall bins and the reliability diagrams; only when some attempt
    recorded a final differential."""
    if not metrics.has_differentials:
        return []
    g = metrics.overall
    rows = [_calibration_row("all attempts", g)]
    several = len(metrics.by_arm) > 1
    if several:
        rows += [_calibration_row(name, arm) for name, arm in metrics.by_arm.items()]
    blocks: list[Block] = [
        Heading("Calibration"),
        Paragraph(CALIBRATION_EXPLANATION, "note"),
        Table(["group", "cases", "Brier", "top-1 Brier", "log loss", "ECE", "top-1", "top-3", "left out"], rows,
              id="calibration"),
    ]
    if g.calibration_left_out:
        blocks.append(Paragraph(f"{_plural(g.calibration_left_out, 'attempt')} with a differential could not be "
                                "scored (an item without a verdict, or a probability outside 0-1).", "note"))
    if g.calibration is not None:
        bins: list[list[Cell]] = [
            [f"{b.lower * 100:.0f}-{b.upper * 100:.0f}%", str(b.count), percent(b.mean_predicted), percent(b.observed)]
            for b in g.calibration.bins if b.count
        ]
        blocks += [Heading("Reliability (all attempts)", 3),
                   Table(["top item's probability", "cases", "mean predicted", "observed"], bins),
                   Plot("reliability", "Observed frequency of a right top diagnosis by its predicted probability "
                                       "(all attempts); the dashed diagonal is perfect calibration.")]
    if several:
        blocks += [Plot(reliability_plot_id(name), f"Reliability of the arm {name}.")
                   for name, arm in metrics.by_arm.items() if arm.calibration is not None]
    return blocks


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


def _cases(run: LoadedRun, pages: dict[str, str], has_cost: bool = False) -> list[Block]:
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
        rows.append([r.attempt, r.dataset, r.bias, *([r.arm] if has_cost else []), str(r.repeat),
                     r.final_diagnosis or "-", r.correct_diagnosis, _verdict_word(r), rubric, str(r.turns),
                     str(r.tests), *([usd(r.cost)] if has_cost else []), leak, image,
                     f"{r.input_tokens + r.output_tokens:,}", link])
        classes.append(_verdict_word(r))
    return [
        Heading("Cases"),
        Paragraph("One row per attempt (the latest result of each). Leak: 'yes' when the doctor was shown the "
                  "diagnosis, 'prone' when the case's data contains it but it was not shown. Image: the image "
                  "status and, in brackets, the image reads made (empty for a case without an image).", "note"),
        Table(["attempt", "dataset", "bias", *(["arm"] if has_cost else []), "repeat", "final diagnosis",
               "correct diagnosis", "verdict", "rubric", "turns", "tests", *(["cost"] if has_cost else []), "leak",
               "image", "tokens", "transcript"], rows, id="cases", row_classes=classes),
    ]


def build_document(run: LoadedRun, metrics: RunMetrics, pages: dict[str, str],
                   problems: list[str]) -> list[Block]:
    """The whole report; ``pages`` maps attempt keys to the stems of their transcript HTML pages."""
    g = metrics.overall
    return [
        *_header(run, metrics), *_headline(g, metrics.has_cost),
        *_arms(metrics), *_calibration(metrics),
        Heading("Per dataset"), _group_table("dataset", metrics.by_dataset, metrics.has_cost),
        Heading("Per bias condition"), _group_table("bias", metrics.by_bias, metrics.has_cost),
        *_leaks(g), *_images(run, g), *_turns_and_tokens(metrics), *_upstream(run, g),
        *_errors(run.results, problems),
        *_cases(run, pages, metrics.has_cost),
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
