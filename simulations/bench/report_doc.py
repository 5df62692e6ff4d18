"""The report as a format-neutral document: headings, key-value blocks, paragraphs, tables, links and plot slots.

``report.py`` builds one document from a run and renders it with ``render_markdown``; ``report_html.py`` renders
the same document as HTML (filling the plot slots with SVG charts), so the two reports can never disagree on a number.
All text in a document is plain text: each renderer escapes it for its own format.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Link:
    """A table cell that links somewhere; an ``href`` of None renders as plain text in that format."""

    text: str
    href_md: str | None = None
    href_html: str | None = None


Cell = str | Link


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str
    kind: str = ""  # "" | "note" (an explanation) | "warning" (something the reader must not miss)


@dataclass(frozen=True)
class KeyValues:
    """Labelled facts; ``prominent`` ones (protocol, measurement mode) are set apart from the rest."""

    items: list[tuple[str, str]]
    prominent: bool = False


@dataclass(frozen=True)
class BulletList:
    items: list[str]


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[Cell]]
    id: str | None = None
    row_classes: list[str] = field(default_factory=list)  # one CSS class per row, for the HTML rendering


@dataclass(frozen=True)
class Plot:
    """A slot for a chart (``plot-<id>`` in the HTML report); the Markdown report leaves it out."""

    id: str
    caption: str


Block = Heading | Paragraph | KeyValues | BulletList | Table | Plot


def percent(value: float | None, digits: int = 1) -> str:
    """``0.5623`` -> ``56.2%``; None -> ``n/a``."""
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def interval(ci: tuple[float, float] | None, n: int | None = None) -> str:
    """A 95% interval as ``48.1-63.9%``; ``n/a`` when missing or when nothing was counted (``n`` == 0)."""
    if ci is None or n == 0:
        return "n/a"
    return f"{ci[0] * 100:.1f}-{ci[1] * 100:.1f}%"


def number(value: float | None, digits: int = 1) -> str:
    """A mean or a total for a table cell, ``n/a`` when missing."""
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}" if digits else f"{value:,.0f}"


def usd(value: float | None) -> str:
    """``1234.5`` -> ``$1,234.50``, whole dollars without cents; ``n/a`` when missing."""
    if value is None:
        return "n/a"
    return f"${value:,.0f}" if float(value).is_integer() else f"${value:,.2f}"


def score(value: float | None, digits: int = 3) -> str:
    """A calibration score (Brier, log loss, ECE) to ``digits`` decimals; ``n/a`` when missing."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def md_text(text: str) -> str:
    """Plain text made safe for one line of Markdown (angle brackets escaped, newlines folded)."""
    # Case text is data, and Markdown viewers render raw HTML: a diagnosis must never become a tag.
    return " ".join(text.replace("<", "&lt;").replace(">", "&gt;").split())


def md_cell(cell: Cell) -> str:
    """A table cell in Markdown: as ``md_text``, with pipes escaped so they cannot open a column."""
    if isinstance(cell, Link):
        text = md_text(cell.text).replace("|", "\\|")
        return f"[{text}]({cell.href_md})" if cell.href_md else text
    return md_text(cell).replace("|", "\\|")


def render_markdown(blocks: list[Block]) -> str:
    """The document as Markdown (plot slots are left out)."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + md_text(block.text), ""]
        elif isinstance(block, Paragraph):
            prefix = {"warning": "**Note:** ", "note": "_"}.get(block.kind, "")
            lines += [prefix + md_text(block.text) + ("_" if block.kind == "note" else ""), ""]
        elif isinstance(block, KeyValues):
            if block.prominent:
                lines += ["> " + " · ".join(f"**{md_text(k)}: `{md_text(v)}`**" for k, v in block.items), ""]
            else:
                lines += [f"- **{md_text(k)}:** {md_text(v)}" for k, v in block.items] + [""]
        elif isinstance(block, BulletList):
            lines += [f"- {md_text(item)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(md_cell(h) for h in block.headers) + " |")
            lines.append("|" + "---|" * len(block.headers))
            lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
    return "\n".join(lines)
