"""``bench compare RUN_A RUN_B``: pair the attempts of two runs and test the accuracy difference with McNemar.

Attempts pair by their key (case, bias condition, repeat). Only attempts judged on both sides count: an error or an
unreadable verdict on either side leaves the pair out, and is reported as unpaired rather than scored as wrong.
Runs under different protocols or measurement modes can still be paired, but the result says loudly that the
comparison is not on equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulations.bench.metrics import McNemar, mcnemar, ratio
from simulations.bench.records import AttemptResult
from simulations.bench.report_doc import md_cell, percent
from simulations.bench.rundir import LoadedRun, read_run

__all__ = ["Comparison", "compare_loaded", "compare_runs", "render_comparison"]

_MANY_CASES = 10  # longer case lists are summarised in the configuration differences


@dataclass
class Comparison:
    run_a: str
    run_b: str
    n_pairs: int
    unpaired_a: int  # attempts of A that formed no pair (no judged counterpart in B, or not judged in A)
    unpaired_b: int
    a_correct: int  # among the pairs
    b_correct: int
    accuracy_a: float | None
    accuracy_b: float | None
    difference: float | None  # accuracy_b - accuracy_a, over the pairs
    both: int
    only_a: int
    only_b: int
    neither: int
    mcnemar: McNemar
    config_differences: list[tuple[str, Any, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _judged(results: list[AttemptResult]) -> dict[str, bool]:
    return {r.attempt: bool(r.correct) for r in results if r.status == "ok" and r.correct is not None}


def _differences(a: LoadedRun, b: LoadedRun) -> list[tuple[str, Any, Any]]:
    differences = []
    for name, old, new in a.config.differences(b.config):
        if name == "case_ids" and max(len(old or []), len(new or [])) > _MANY_CASES:
            common = len(set(old or []) & set(new or []))
            old, new = f"{len(old or [])} cases", f"{len(new or [])} cases ({common} in common)"
        differences.append((name, old, new))
    return differences


def _warnings(a: LoadedRun, b: LoadedRun, n_pairs: int) -> list[str]:
    warnings = []
    if a.config.protocol != b.config.protocol:
        warnings.append(f"Different protocols ({a.config.protocol} vs {b.config.protocol}): "
                        "not comparable on equal terms.")
    if a.config.measurement_mode != b.config.measurement_mode:
        warnings.append(f"Different measurement modes ({a.config.measurement_mode} vs {b.config.measurement_mode}): "
                        "not comparable on equal terms.")
    if n_pairs == 0:
        shared = {r.attempt for r in a.results} & {r.attempt for r in b.results}
        if not shared:
            warnings.append("No pairs: the runs have no attempt (case, bias, repeat) in common.")
        else:
            warnings.append(f"No pairs: {len(shared)} attempts are in both runs, but none was judged on both sides "
                            "(errors or unreadable verdicts).")
    return warnings


def compare_loaded(a: LoadedRun, b: LoadedRun) -> Comparison:
    """Pair two loaded runs (``compare_runs`` reads them from disk first)."""
    judged_a, judged_b = _judged(a.results), _judged(b.results)
    keys = [key for key in judged_a if key in judged_b]
    both = sum(1 for k in keys if judged_a[k] and judged_b[k])
    only_a = sum(1 for k in keys if judged_a[k] and not judged_b[k])
    only_b = sum(1 for k in keys if judged_b[k] and not judged_a[k])
    n = len(keys)
    a_correct, b_correct = both + only_a, both + only_b
    accuracy_a, accuracy_b = ratio(a_correct, n), ratio(b_correct, n)
    return Comparison(
        run_a=a.run_id, run_b=b.run_id, n_pairs=n, unpaired_a=len(a.results) - n, unpaired_b=len(b.results) - n,
        a_correct=a_correct, b_correct=b_correct, accuracy_a=accuracy_a, accuracy_b=accuracy_b,
        difference=None if n == 0 else (b_correct - a_correct) / n,
        both=both, only_a=only_a, only_b=only_b, neither=n - both - only_a - only_b,
        mcnemar=mcnemar(only_a, only_b), config_differences=_differences(a, b), warnings=_warnings(a, b, n),
    )


def compare_runs(a: Path, b: Path) -> Comparison:
    """Read the runs in ``a`` and ``b`` and pair them; raises ``RunDirError`` when either cannot be read."""
    return compare_loaded(read_run(Path(a)), read_run(Path(b)))


def _cell(value: Any) -> str:
    return md_cell(str(value))


def render_comparison(c: Comparison) -> str:
    """The comparison as Markdown: accuracies, difference, the 2x2 table, McNemar p-values, differences, warnings."""
    diff = "n/a" if c.difference is None else f"{c.difference * 100:+.1f} points"
    m = c.mcnemar
    lines = [
        f"# Comparison: {_cell(c.run_a)} (A) vs {_cell(c.run_b)} (B)", "",
    ]
    lines += [f"> **Warning:** {_cell(w)}" for w in c.warnings] + ([""] if c.warnings else [])
    lines += [
        f"{c.n_pairs} paired attempts (judged in both runs); unpaired: {c.unpaired_a} in A, {c.unpaired_b} in B.", "",
        "| | A | B |", "|---|---|---|",
        f"| run | {_cell(c.run_a)} | {_cell(c.run_b)} |",
        f"| correct (paired) | {c.a_correct}/{c.n_pairs} | {c.b_correct}/{c.n_pairs} |",
        f"| accuracy (paired) | {percent(c.accuracy_a)} | {percent(c.accuracy_b)} |", "",
        f"**Difference (B - A):** {diff}", "",
        "| | B correct | B wrong |", "|---|---|---|",
        f"| **A correct** | {c.both} | {c.only_a} |",
        f"| **A wrong** | {c.only_b} | {c.neither} |", "",
        (f"McNemar on the discordant pairs (b = {m.b} right only in A, c = {m.c} right only in B): exact two-sided "
        f"p = {m.p_value:.4g}; chi-square with continuity correction = {m.statistic:.4g}, p = {m.p_chi2:.4g}."), "",
    ]
    if c.config_differences:
        lines += ["## Configuration differences", "", "| field | A | B |", "|---|---|---|"]
        lines += [f"| {_cell(name)} | {_cell(old)} | {_cell(new)} |" for name, old, new in c.config_differences]
        lines.append("")
    else:
        lines += ["The two runs have the same configuration.", ""]
    return "\n".join(lines)
