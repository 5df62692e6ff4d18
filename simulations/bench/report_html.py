"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, fonts or external URLs).

It renders the same document as the Markdown report and fills the plot slots with charts built from the run's
metrics: the five every report has (``PLOT_IDS``), and, when the run recorded them, accuracy against cost per arm
and reliability diagrams (overall and per arm). Everything taken from a run (case text, diagnoses, model specs, error messages) is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape

from simulations.bench.metrics import GroupMetrics, RunMetrics, wilson_interval
from simulations.bench.plots import PALETTE, Bar, Point, bar_chart, histogram, reliability_diagram, scatter_plot
from simulations.bench.report_doc import Block, BulletList, Cell, Heading, KeyValues, Link, Paragraph, Plot, Table

__all__ = ["OPTIONAL_PLOT_IDS", "PLOT_IDS", "reliability_plot_id", "render_html", "render_plot"]

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #263238; margin: 0 auto;
       max-width: 1200px; padding: 16px 24px 48px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #cfd8dc; }
h3 { font-size: 15px; }
.prominent { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
.prominent div { background: #e3f2fd; border: 1px solid #90caf9; border-radius: 6px; padding: 8px 14px;
                 font-size: 16px; }
.prominent b { display: block; font-size: 11px; text-transform: uppercase; color: #546e7a; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #cfd8dc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eceff1; }
tr.correct td { background: #e8f5e9; } tr.incorrect td { background: #ffebee; }
tr.error td { background: #fff3e0; } tr.unjudged td { background: #f5f5f5; }
p.note { color: #546e7a; } p.warning { background: #fff8e1; border-left: 4px solid #ffb300; padding: 6px 10px; }
figure.plot { margin: 12px 0 20px; } figure.plot svg { max-width: 100%; height: auto; }
figcaption { color: #546e7a; font-size: 12px; }
"""


def _accuracy_plot(m: RunMetrics) -> str:
    bars = []
    for label, group, color in [("overall", m.overall, PALETTE["overall"]),
                                *[(name, g, PALETTE["dataset"]) for name, g in m.by_dataset.items()],
                                *[(name, g, PALETTE["bias"]) for name, g in m.by_bias.items()]]:
        low, high = group.accuracy_ci
        bars.append(Bar(label, group.accuracy, low if group.judged else None, high if group.judged else None,
                        note=f"n={group.judged}", color=color))
    return bar_chart(bars, title="Accuracy (overall, datasets in blue, bias conditions in orange)", percent=True,
                     y_label="accuracy",
                     empty_text="No judged attempts yet: accuracy needs at least one finished, judged attempt.")


def _turns_plot(m: RunMetrics) -> str:
    counts = dict(m.turns_histogram)
    bins = [(str(t), counts.get(t, 0)) for t in range(min(counts), max(counts) + 1)] if counts else []
    return histogram(bins, title="Turns used per finished attempt", x_label="doctor turns", y_label="attempts",
                     empty_text="No finished attempts yet.")


def _accuracy_by_turns_plot(m: RunMetrics) -> str:
    bars = []
    for label, n, correct in m.by_turns:
        low, high = wilson_interval(correct, n)
        bars.append(Bar(label, correct / n, low, high, note=f"n={n}", color=PALETTE["neutral"]))
    return bar_chart(bars, title="Accuracy by turns used", percent=True, y_label="accuracy", x_label="doctor turns",
                     empty_text="No judged attempts yet.")


def _tokens_plot(m: RunMetrics) -> str:
    bars = [Bar(role, tokens, color=PALETTE["dataset"]) for role, tokens in m.overall.tokens_per_case.items()]
    return bar_chart(bars, title="Tokens per case by role (prompt + completion)", y_label="tokens",
                     empty_text="No finished attempts with token counts yet.")


def _leaks_plot(m: RunMetrics) -> str:
    g = m.overall
    if not g.ok:
        return bar_chart([], title="Leaks", empty_text="No finished attempts yet.")
    bars = [
        Bar("leak rate", g.leak_rate, *g.leak_ci, note=f"{g.leaks}/{g.ok}", color=PALETTE["leak"]),
        Bar("accuracy, all", g.accuracy, *(g.accuracy_ci if g.judged else (None, None)),
            note=f"n={g.judged}", color=PALETTE["overall"]),
        Bar("accuracy, no leaks", g.accuracy_without_leaks,
            *(g.accuracy_without_leaks_ci if g.judged_without_leaks else (None, None)),
            note=f"n={g.judged_without_leaks}", color=PALETTE["good"]),
    ]
    return bar_chart(bars, title="Leak rate, and accuracy with and without leaked attempts", percent=True)


_ARM_COLORS = ("#37474f", "#1e88e5", "#fb8c00", "#43a047", "#7e57c2", "#e53935", "#00897b", "#6d4c41")


def _accuracy_cost_plot(m: RunMetrics) -> str:
    points = []
    for i, (arm, g) in enumerate(m.by_arm.items()):
        low, high = g.accuracy_ci
        points.append(Point(arm, g.mean_cost or 0.0, g.accuracy, low if g.judged else None,
                            high if g.judged else None, note=f"n={g.judged}", color=_ARM_COLORS[i % len(_ARM_COLORS)]))
    return scatter_plot(points, title="Accuracy against mean cost per case, by arm", x_label="mean cost per case (USD)",
                        y_label="accuracy", empty_text="No judged attempts yet.")


def _reliability(title: str, g: GroupMetrics | None) -> str:
    bins = g.calibration.bins if g is not None and g.calibration is not None else []
    return reliability_diagram(bins, title=title, empty_text="No final differential to score.")


def _reliability_plot(m: RunMetrics) -> str:
    return _reliability("Reliability of the final differential (all attempts)", m.overall)


def reliability_plot_id(arm: str) -> str:
    """The plot id of one arm's reliability diagram: ``reliability-arm-panel-budgeted`` for ``panel:budgeted``."""
    return "reliability-arm-" + (re.sub(r"[^a-z0-9]+", "-", arm.lower()).strip("-") or "arm")


_PLOTS: dict[str, Callable[[RunMetrics], str]] = {
    "accuracy": _accuracy_plot, "turns": _turns_plot, "accuracy-by-turns": _accuracy_by_turns_plot,
    "tokens": _tokens_plot, "leaks": _leaks_plot,
}
PLOT_IDS: tuple[str, ...] = tuple(_PLOTS)
# Plots only a run that recorded costs or differentials has a slot for (and the per-arm reliability_plot_id ones).
_OPTIONAL: dict[str, Callable[[RunMetrics], str]] = {
    "accuracy-cost": _accuracy_cost_plot, "reliability": _reliability_plot,
}
OPTIONAL_PLOT_IDS: tuple[str, ...] = tuple(_OPTIONAL)


def render_plot(plot_id: str, metrics: RunMetrics) -> str:
    """The SVG of one of ``PLOT_IDS``, ``OPTIONAL_PLOT_IDS`` or an arm's ``reliability_plot_id``."""
    if plot_id in _PLOTS:
        return _PLOTS[plot_id](metrics)
    if plot_id in _OPTIONAL:
        return _OPTIONAL[plot_id](metrics)
    for arm, g in metrics.by_arm.items():
        if reliability_plot_id(arm) == plot_id:
            return _reliability(f"Reliability of the final differential ({arm})", g)
    raise KeyError(f"unknown plot {plot_id!r}")


def _cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        if cell.href_html:
            return f'<a href="{escape(cell.href_html)}">{escape(cell.text)}</a>'
        return escape(cell.text)
    return escape(cell)


def _block(block: Block, metrics: RunMetrics) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        kind = f' class="{escape(block.kind)}"' if block.kind else ""
        return f"<p{kind}>{escape(block.text)}</p>"
    if isinstance(block, KeyValues):
        if block.prominent:
            inner = "".join(f"<div><b>{escape(k)}</b>{escape(v)}</div>" for k, v in block.items)
            return f'<div class="prominent">{inner}</div>'
        inner = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in block.items)
        return f'<dl class="facts">{inner}</dl>'
    if isinstance(block, BulletList):
        return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        table_id = f' id="{escape(block.id)}"' if block.id else ""
        head = "".join(f"<th>{_cell(h)}</th>" for h in block.headers)
        rows = []
        for i, row in enumerate(block.rows):
            cls = f' class="{escape(block.row_classes[i])}"' if i < len(block.row_classes) else ""
            rows.append(f"<tr{cls}>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>")
        return f"<table{table_id}><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
    if isinstance(block, Plot):
        return (f'<figure class="plot" id="plot-{escape(block.id)}">\n{render_plot(block.id, metrics)}\n'
                f"<figcaption>{escape(block.caption)}</figcaption></figure>")
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_html(blocks: list[Block], metrics: RunMetrics, *, title: str) -> str:
    """The document as one self-contained HTML page."""
    body = "\n".join(_block(block, metrics) for block in blocks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
