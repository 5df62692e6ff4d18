"""Small inline-SVG charts for the HTML report: bars with error bars, histograms, a labelled scatter with error
whiskers (accuracy against cost per arm) and a reliability diagram (calibration).

Each function returns one ``<svg>`` element as a string, of a fixed size, with axes, tick labels and a tooltip
(``<title>``) on every mark. Colours are attributes rather than CSS classes, so a chart copied out of the report
still looks right. Labels are data (dataset names, bias conditions) and are escaped. When there is nothing to draw,
the chart is a frame holding an explanatory sentence, never an empty or broken picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from simulations.bench.calibration import ReliabilityBin

WIDTH, HEIGHT = 640, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 16, 40, 70
PALETTE = {
    "overall": "#37474f", "dataset": "#1e88e5", "bias": "#fb8c00", "leak": "#e53935", "good": "#43a047",
    "neutral": "#7e57c2",
}
_AXIS = "#90a4ae"
_TEXT = "#263238"


@dataclass(frozen=True)
class Bar:
    """One bar: ``value`` None draws a placeholder (no data); ``low``/``high`` draw an error bar."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""  # shown in the tooltip and under the label (e.g. "n=12")
    color: str = PALETTE["dataset"]


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f}%"
    return f"{value:,.0f}" if abs(value) >= 10 or value == 0 else f"{value:.2g}"


def _short(label: str, limit: int = 20) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def nice_ticks(top: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values from 0 to at least ``top`` (steps of 1, 2 or 5 times a power of ten; whole steps for
    counts when ``integer``)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = max(top / max(1, count - 1), 1.0 if integer else 0.0)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _open(title: str, extra: str = "") -> list[str]:
    return [
        (f'<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11"{extra}>'),
        f"<title>{escape(title)}</title>",
        (f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold" fill="{_TEXT}">'
        f"{escape(title)}</text>"),
    ]


def empty_chart(title: str, message: str) -> str:
    """A framed chart that says why there is nothing to plot."""
    parts = _open(title)
    parts.append(f'<rect class="frame" x="{_LEFT}" y="{_TOP}" width="{WIDTH - _LEFT - _RIGHT}" '
                 f'height="{HEIGHT - _TOP - _BOTTOM}" fill="#fafafa" stroke="{_AXIS}" stroke-dasharray="4 3"/>')
    parts.append(f'<text class="empty" x="{WIDTH / 2}" y="{(HEIGHT - _BOTTOM + _TOP) / 2}" text-anchor="middle" '
                 f'fill="{_TEXT}">{escape(message)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _axes(parts: list[str], ticks: list[float], y_of, percent: bool, y_label: str) -> None:
    right = WIDTH - _RIGHT
    for tick in ticks:
        y = y_of(tick)
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eceff1"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{_TEXT}">'
                     f"{_fmt(tick, percent)}</text>")
    bottom = HEIGHT - _BOTTOM
    parts.append(f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}" stroke="{_AXIS}"/>')
    parts.append(f'<line class="axis" x1="{_LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{_AXIS}"/>')
    if y_label:
        mid = (_TOP + bottom) / 2
        parts.append(f'<text x="14" y="{mid}" text-anchor="middle" transform="rotate(-90 14 {mid})" '
                     f'fill="{_TEXT}">{escape(y_label)}</text>')


def bar_chart(
    bars: Sequence[Bar], *, title: str, percent: bool = False, y_label: str = "", x_label: str = "",
    empty_text: str = "Nothing to plot.", counts: bool = False,
) -> str:
    """Vertical bars with optional error bars; proportions (``percent``) use a fixed 0-100% axis.

    ``counts`` (histograms) uses whole-number ticks and leaves zero bars unlabelled, so empty bins stay quiet.
    """
    if not any(b.value is not None for b in bars):
        return empty_chart(title, empty_text)
    highest = max(max(b.value or 0.0, b.high or 0.0) for b in bars)
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0] if percent else nice_ticks(highest, integer=counts)
    top, bottom = ticks[-1] or 1.0, HEIGHT - _BOTTOM

    def y_of(value: float) -> float:
        return bottom - (bottom - _TOP) * min(value, top) / top

    parts = _open(title)
    _axes(parts, ticks, y_of, percent, y_label)
    slot = (WIDTH - _LEFT - _RIGHT) / len(bars)
    width = min(56.0, slot * 0.6)
    rotate = any(len(b.label) > 12 for b in bars) or (len(bars) > 6 and any(len(b.label) > 3 for b in bars))
    for i, b in enumerate(bars):
        cx = _LEFT + slot * (i + 0.5)
        tip = f"{b.label}: " + ("no data" if b.value is None else _fmt(b.value, percent))
        if b.low is not None and b.high is not None and b.value is not None:
            tip += f" (95% CI {_fmt(b.low, percent)}-{_fmt(b.high, percent)})"
        tip += f" {b.note}" if b.note else ""
        if counts and b.value == 0:
            pass  # an empty bin: its label on the axis is enough
        elif b.value is None:
            parts.append(f'<text x="{cx:.1f}" y="{bottom - 6}" text-anchor="middle" fill="{_AXIS}">n/a'
                         f"<title>{escape(tip)}</title></text>")
        else:
            y = y_of(b.value)
            parts.append(f'<rect class="bar" x="{cx - width / 2:.1f}" y="{y:.1f}" width="{width:.1f}" '
                         f'height="{max(bottom - y, 0.5):.1f}" fill="{escape(b.color)}">'
                         f"<title>{escape(tip)}</title></rect>")
            if b.low is not None and b.high is not None:
                y1, y2, cap = y_of(b.low), y_of(b.high), width / 4
                parts.append(f'<path class="errorbar" d="M{cx:.1f},{y1:.1f}V{y2:.1f}M{cx - cap:.1f},{y1:.1f}'
                             f'H{cx + cap:.1f}M{cx - cap:.1f},{y2:.1f}H{cx + cap:.1f}" stroke="{_TEXT}" '
                             f'stroke-width="1.5" fill="none"/>')
            label_y = min(y, y_of(b.high) if b.high is not None else y) - 4
            parts.append(f'<text x="{cx + (width / 4 + 2 if b.high is not None else 0):.1f}" y="{label_y:.1f}" '
                         f'text-anchor="{"start" if b.high is not None else "middle"}" fill="{_TEXT}">'
                         f"{_fmt(b.value, percent)}</text>")
        label = escape(_short(b.label)) + (f" ({escape(b.note)})" if b.note and not rotate else "")
        if rotate:
            parts.append(f'<text x="{cx:.1f}" y="{bottom + 12}" text-anchor="end" fill="{_TEXT}" '
                         f'transform="rotate(-35 {cx:.1f} {bottom + 12})">{label}</text>')
        else:
            parts.append(f'<text x="{cx:.1f}" y="{bottom + 16}" text-anchor="middle" fill="{_TEXT}">{label}</text>')
    if x_label:
        parts.append(f'<text x="{(_LEFT + WIDTH - _RIGHT) / 2}" y="{HEIGHT - 4 if rotate else bottom + 34}" '
                     f'text-anchor="middle" fill="{_TEXT}">{escape(x_label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def histogram(
    bins: Sequence[tuple[str, int]], *, title: str, x_label: str = "", y_label: str = "count",
    empty_text: str = "Nothing to plot.", color: str = PALETTE["neutral"],
) -> str:
    """Adjacent bars of counts, one per labelled bin."""
    if not bins or not any(count for _, count in bins):
        return empty_chart(title, empty_text)
    bars = [Bar(label, float(count), color=color) for label, count in bins]
    return bar_chart(bars, title=title, y_label=y_label, x_label=x_label, empty_text=empty_text, counts=True)


@dataclass(frozen=True)
class Point:
    """One labelled point; ``low``/``high`` draw a vertical whisker (a 95% interval of ``y``)."""

    label: str
    x: float
    y: float | None  # None: nothing to place (no judged attempts); listed under the chart instead
    low: float | None = None
    high: float | None = None
    note: str = ""  # shown in the tooltip (e.g. "n=12")
    color: str = PALETTE["neutral"]


def _money(value: float) -> str:
    return f"${value:,.0f}"


def scatter_plot(
    points: Sequence[Point], *, title: str, x_label: str = "", y_label: str = "",
    empty_text: str = "Nothing to plot.",
) -> str:
    """Points on a US-dollar x axis from 0 and a fixed 0-100% y axis, each labelled, with its whisker."""
    placed = [(p, p.y) for p in points if p.y is not None]
    if not placed:
        return empty_chart(title, empty_text)
    ticks = nice_ticks(max(p.x for p, _ in placed) * 1.1)
    x_top, bottom, right = ticks[-1] or 1.0, HEIGHT - _BOTTOM, WIDTH - _RIGHT
    pad = 14.0  # keeps a point at $0 or at the top tick off the axis lines

    def x_of(value: float) -> float:
        return _LEFT + pad + (right - _LEFT - 2 * pad) * max(0.0, min(value, x_top)) / x_top

    def y_of(value: float) -> float:
        return bottom - (bottom - _TOP) * max(0.0, min(value, 1.0))

    parts = _open(title)
    _axes(parts, [0.0, 0.25, 0.5, 0.75, 1.0], y_of, True, y_label)
    for tick in ticks:
        parts.append(f'<text x="{x_of(tick):.1f}" y="{bottom + 16}" text-anchor="middle" fill="{_TEXT}">'
                     f"{_money(tick)}</text>")
    for p, y in placed:
        cx, cy = x_of(p.x), y_of(y)
        tip = f"{p.label}: accuracy {_fmt(y, True)}"
        if p.low is not None and p.high is not None:
            tip += f" (95% CI {_fmt(p.low, True)}-{_fmt(p.high, True)})"
            y1, y2 = y_of(p.low), y_of(p.high)
            parts.append(f'<path class="whisker" d="M{cx:.1f},{y1:.1f}V{y2:.1f}M{cx - 4:.1f},{y1:.1f}H{cx + 4:.1f}'
                         f'M{cx - 4:.1f},{y2:.1f}H{cx + 4:.1f}" stroke="{escape(p.color)}" stroke-width="1.5" '
                         'fill="none"/>')
        tip += f", mean cost {_money(p.x)}" + (f" {p.note}" if p.note else "")
        parts.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{escape(p.color)}">'
                     f"<title>{escape(tip)}</title></circle>")
        anchor = "end" if cx > right - 90 else "start"
        dx = -8 if anchor == "end" else 8
        parts.append(f'<text class="point-label" x="{cx + dx:.1f}" y="{cy - 6:.1f}" text-anchor="{anchor}" '
                     f'fill="{_TEXT}">{escape(_short(p.label, 28))}</text>')
    missing = [p.label for p in points if p.y is None]
    if missing:
        parts.append(f'<text class="unplaced" x="{_LEFT}" y="{HEIGHT - 8}" fill="{_AXIS}">no judged attempts: '
                     f"{escape(', '.join(missing))}</text>")
    if x_label:
        parts.append(f'<text x="{(_LEFT + right) / 2}" y="{bottom + 34}" text-anchor="middle" fill="{_TEXT}">'
                     f"{escape(x_label)}</text>")
    parts.append("</svg>")
    return "\n".join(parts)


def reliability_diagram(
    bins: Sequence[ReliabilityBin], *, title: str, empty_text: str = "No differential to score.",
    color: str = PALETTE["neutral"],
) -> str:
    """Observed frequency per bin of predicted probability (a bar across the bin, labelled with the frequency, a dot
    at the bin's mean prediction, its case count under the axis) against the diagonal of perfect calibration."""
    if not any(b.count for b in bins):
        return empty_chart(title, empty_text)
    bottom, right = HEIGHT - _BOTTOM, WIDTH - _RIGHT

    def x_of(value: float) -> float:
        return _LEFT + (right - _LEFT) * max(0.0, min(value, 1.0))

    def y_of(value: float) -> float:
        return bottom - (bottom - _TOP) * max(0.0, min(value, 1.0))

    parts = _open(title)
    _axes(parts, [0.0, 0.25, 0.5, 0.75, 1.0], y_of, True, "observed frequency")
    parts.append(f'<line class="diagonal" x1="{x_of(0):.1f}" y1="{y_of(0):.1f}" x2="{x_of(1):.1f}" y2="{y_of(1):.1f}" '
                 f'stroke="{_AXIS}" stroke-dasharray="5 4"><title>perfect calibration</title></line>')
    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        parts.append(f'<text x="{x_of(tick):.1f}" y="{bottom + 14}" text-anchor="middle" fill="{_TEXT}">'
                     f"{_fmt(tick, True)}</text>")
    parts.append(f'<text x="{_LEFT - 6}" y="{bottom + 28}" text-anchor="end" fill="{_AXIS}">cases</text>')
    for b in bins:
        if not b.count or b.observed is None or b.mean_predicted is None:
            continue
        x1, x2 = x_of(b.lower) + 1, x_of(b.upper) - 1
        mid, y = (x1 + x2) / 2, y_of(b.observed)
        tip = (f"{_fmt(b.lower, True)}-{_fmt(b.upper, True)}: {b.count} cases, mean predicted "
               f"{_fmt(b.mean_predicted, True)}, observed {_fmt(b.observed, True)}")
        parts.append(f'<rect class="bar" x="{x1:.1f}" y="{y:.1f}" width="{max(x2 - x1, 0.5):.1f}" '
                     f'height="{max(bottom - y, 0.5):.1f}" fill="{escape(color)}" fill-opacity="0.55">'
                     f"<title>{escape(tip)}</title></rect>")
        parts.append(f'<circle class="mean-predicted" cx="{x_of(b.mean_predicted):.1f}" cy="{y:.1f}" r="3" '
                     f'fill="{_TEXT}"><title>{escape(tip)}</title></circle>')
        parts.append(f'<text class="observed" x="{mid:.1f}" y="{y - 5:.1f}" text-anchor="middle" fill="{_TEXT}">'
                     f"{_fmt(b.observed, True)}</text>")
        parts.append(f'<text class="count" x="{mid:.1f}" y="{bottom + 28}" text-anchor="middle" fill="{_TEXT}">'
                     f"{b.count}</text>")
    parts.append(f'<text x="{(_LEFT + right) / 2}" y="{bottom + 46}" text-anchor="middle" fill="{_TEXT}">'
                 "predicted probability of the top diagnosis</text>")
    parts.append("</svg>")
    return "\n".join(parts)
