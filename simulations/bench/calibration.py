"""How well the differential's probabilities match how often it is right, over a run of attempts.

Each attempt contributes one ``CalibrationCase``: the final differential as (diagnosis, probability) pairs and the
position of the item judged correct, if any (the judging happens elsewhere). The listed items rarely cover every
possibility, so each case carries an implicit "other" class holding whatever probability the items leave unclaimed;
when the right diagnosis is missing from the list, "other" is the class that was right. A model that claims more
than 1 in total is read as relative weights: the items are rescaled to sum to 1 and "other" gets nothing.

Scores: the multi-class Brier score (0 is perfect, 2 the worst), the binary Brier score of the top item alone, log
loss, reliability bins with the expected calibration error over the top item's probability, and top-k accuracy.
"Top" means highest probability, ties kept in the order listed, so an unsorted differential is ranked the same way a
sorted one would be. Every average over an empty input is None rather than a division by zero.
Standard library only, like ``metrics``: a report must be writable wherever the harness runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "CalibrationCase", "CalibrationSummary", "ReliabilityBin", "brier_score", "case_from_matches",
    "expected_calibration_error", "log_loss", "reliability_bins", "summarise_calibration", "top1_brier",
    "top_k_accuracy",
]

DEFAULT_EPS = 1e-6
DEFAULT_BINS = 10
# A probability within this of a bin edge belongs to the bin above: 0.29 * 100 is 28.999999999999996 in floating
# point, and 0.29 must not land in [0.28, 0.29).
_EDGE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class CalibrationCase:
    """One attempt's final differential and which of its items was right (None: the answer is not listed)."""

    items: list[tuple[str, float]]
    correct_index: int | None

    def __post_init__(self) -> None:
        # Checked here so that every score below can trust its input; a bad probability is a parsing bug upstream.
        for name, p in self.items:
            if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):  # NaN fails both comparisons
                raise ValueError(f"probability of {name!r} must be in [0, 1], got {p!r}")
        if self.correct_index is not None and not 0 <= self.correct_index < len(self.items):
            raise ValueError(f"correct_index {self.correct_index} is outside a differential of {len(self.items)}")


def case_from_matches(items: Sequence[tuple[str, float]], matches: Sequence[bool]) -> CalibrationCase:
    """A case from a differential and one match flag per item; the first matching item counts as the correct one.

    More than one match happens when the differential lists synonyms of the answer; only one class can be the true
    one, and the first listed is the one the model put forward.
    """
    if len(items) != len(matches):
        raise ValueError(f"{len(items)} items but {len(matches)} match flags")
    correct = next((i for i, hit in enumerate(matches) if hit), None)
    return CalibrationCase(items=list(items), correct_index=correct)


def _distribution(case: CalibrationCase) -> tuple[list[float], float]:
    """The items' probabilities and the "other" probability, summing to 1 (rescaled first when they exceed 1)."""
    probs = [float(p) for _, p in case.items]
    total = sum(probs)
    if total > 1.0:
        return [p / total for p in probs], 0.0
    return probs, max(0.0, 1.0 - total)  # max: rounding can leave a tiny negative remainder


def _ranking(case: CalibrationCase) -> list[int]:
    """Item positions from most to least probable; ``sorted`` is stable, so ties keep the order listed."""
    return sorted(range(len(case.items)), key=lambda i: -case.items[i][1])


def _top1(case: CalibrationCase) -> tuple[float, bool]:
    """The top item's (normalised) probability and whether it was right; (0, wrong) for an empty differential,
    which named nothing and so claimed nothing."""
    if not case.items:
        return 0.0, False
    probs, _ = _distribution(case)
    top = _ranking(case)[0]
    return probs[top], top == case.correct_index


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _case_brier(case: CalibrationCase) -> float:
    probs, other = _distribution(case)
    score = sum((p - (1.0 if i == case.correct_index else 0.0)) ** 2 for i, p in enumerate(probs))
    return score + (other - (1.0 if case.correct_index is None else 0.0)) ** 2


def brier_score(cases: Sequence[CalibrationCase]) -> float | None:
    """Mean multi-class Brier score over the listed items plus "other"; None for no cases."""
    return _mean([_case_brier(c) for c in cases])


def top1_brier(cases: Sequence[CalibrationCase]) -> float | None:
    """Mean binary Brier score of the top item's probability against whether it was right; None for no cases."""
    return _mean([(p - (1.0 if right else 0.0)) ** 2 for p, right in map(_top1, cases)])


def log_loss(cases: Sequence[CalibrationCase], eps: float = DEFAULT_EPS) -> float | None:
    """Mean of -ln(probability given to the right class), that probability clipped at ``eps`` so that one confident
    miss costs -ln(eps) instead of infinity; None for no cases."""
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")
    losses = []
    for case in cases:
        probs, other = _distribution(case)
        p = other if case.correct_index is None else probs[case.correct_index]
        losses.append(-math.log(max(p, eps)))
    return _mean(losses)


class ReliabilityBin(NamedTuple):
    """One bin of the reliability diagram over the top item's probability, ``lower <= p < upper`` (the last bin
    includes 1). ``mean_predicted`` and ``observed`` are None when the bin is empty."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed: float | None


def _bin_index(p: float, n_bins: int) -> int:
    return min(n_bins - 1, math.floor(p * n_bins + _EDGE_TOLERANCE))


def reliability_bins(cases: Sequence[CalibrationCase], n_bins: int = DEFAULT_BINS) -> list[ReliabilityBin]:
    """``n_bins`` equal-width bins over [0, 1] of the top item's probability, empty bins kept so a diagram has
    every column; each bin gives its mean predicted probability and the share of its cases whose top item was
    right."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    members: list[list[tuple[float, bool]]] = [[] for _ in range(n_bins)]
    for p, right in map(_top1, cases):
        members[_bin_index(p, n_bins)].append((p, right))
    return [
        ReliabilityBin(
            lower=i / n_bins,
            upper=(i + 1) / n_bins,
            count=len(inside),
            mean_predicted=_mean([p for p, _ in inside]),
            observed=_mean([1.0 if right else 0.0 for _, right in inside]),
        )
        for i, inside in enumerate(members)
    ]


def expected_calibration_error(cases: Sequence[CalibrationCase], n_bins: int = DEFAULT_BINS) -> float | None:
    """The gap between mean predicted probability and observed accuracy per bin, weighted by the bin's share of
    cases; None for no cases."""
    bins = reliability_bins(cases, n_bins)
    total = sum(b.count for b in bins)
    if total == 0:
        return None
    return sum(
        b.count / total * abs(b.observed - b.mean_predicted)
        for b in bins
        if b.observed is not None and b.mean_predicted is not None
    )


def top_k_accuracy(cases: Sequence[CalibrationCase], k: int) -> float | None:
    """Share of cases whose right diagnosis is among the ``k`` most probable items; None for no cases."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return _mean([
        1.0 if c.correct_index is not None and _ranking(c).index(c.correct_index) < k else 0.0 for c in cases
    ])


@dataclass(frozen=True)
class CalibrationSummary:
    """Every calibration score of a run; the scores are None when ``n`` is 0."""

    n: int
    brier: float | None
    top1_brier: float | None
    log_loss: float | None
    ece: float | None
    top1_accuracy: float | None
    top3_accuracy: float | None
    bins: list[ReliabilityBin]


def summarise_calibration(
    cases: Sequence[CalibrationCase], *, n_bins: int = DEFAULT_BINS, eps: float = DEFAULT_EPS
) -> CalibrationSummary:
    """All the scores above for one group of cases (top-1 and top-3 accuracy)."""
    return CalibrationSummary(
        n=len(cases),
        brier=brier_score(cases),
        top1_brier=top1_brier(cases),
        log_loss=log_loss(cases, eps),
        ece=expected_calibration_error(cases, n_bins),
        top1_accuracy=top_k_accuracy(cases, 1),
        top3_accuracy=top_k_accuracy(cases, 3),
        bins=reliability_bins(cases, n_bins),
    )
