"""Aggregates of a benchmark run: accuracy with confidence intervals, leaks, images, turns, tokens, cache use, what
the consultations cost (per arm too) and how well the final differential's probabilities are calibrated.

Every proportion carries a 95% Wilson score interval (it behaves at 0 and at n, unlike the normal approximation);
when cases were repeated, accuracy also gets a cluster bootstrap interval that resamples whole cases, because the
repeats of one case are not independent. ``mcnemar`` tests paired accuracy differences between two runs.
Pure Python on purpose: a report must be writable wherever the harness runs.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from simulations.bench.calibration import CalibrationCase, CalibrationSummary, case_from_matches, summarise_calibration
from simulations.bench.records import SINGLE_ARM, AttemptResult

Z95 = 1.959963984540054  # the two-sided 95% quantile of the standard normal


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n``; the uninformative (0, 1) when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _quantile(ordered: Sequence[float], q: float) -> float:
    # Linear interpolation between order statistics (numpy's default), on an already sorted list.
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_interval(
    per_case: Mapping[str, Sequence[float]], *, samples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean under a cluster bootstrap: case ids are drawn with replacement and the
    statistic is the mean of all values of the drawn cases (so a case's repeats travel together).

    Deterministic for a given ``seed``; (0, 1) when there are no values at all.
    """
    clusters = [(sum(values), len(values)) for _, values in sorted(per_case.items()) if len(values) > 0]
    if not clusters:
        return 0.0, 1.0
    rng = random.Random(seed)
    k = len(clusters)
    stats: list[float] = []
    for _ in range(samples):
        total = count = 0.0
        for _ in range(k):
            s, n = clusters[rng.randrange(k)]
            total += s
            count += n
        stats.append(total / count)
    stats.sort()
    alpha = 1.0 - level
    return _quantile(stats, alpha / 2), _quantile(stats, 1 - alpha / 2)


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on the discordant pairs: ``b`` right only in A, ``c`` right only in B."""

    b: int
    c: int
    statistic: float  # chi-square with continuity correction; 0 when there are no discordant pairs
    p_value: float  # exact two-sided binomial p
    p_chi2: float  # p of the chi-square statistic with one degree of freedom


def mcnemar(b: int, c: int) -> McNemar:
    """Exact and chi-square McNemar tests for ``b`` and ``c`` discordant pairs."""
    n = b + c
    if n == 0:
        return McNemar(b=b, c=c, statistic=0.0, p_value=1.0, p_chi2=1.0)
    statistic = max(0, abs(b - c) - 1) ** 2 / n
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    p_value = min(1.0, 2 * tail / 2**n)  # integer arithmetic until the last division: exact for any n
    return McNemar(b=b, c=c, statistic=statistic, p_value=p_value, p_chi2=math.erfc(math.sqrt(statistic / 2)))


def ratio(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator``, or None when there is nothing to divide by."""
    return numerator / denominator if denominator else None


@dataclass
class GroupMetrics:
    """The aggregates of one group of attempts (the whole run, one dataset or one bias condition)."""

    attempts: int = 0
    ok: int = 0
    errors: int = 0
    judged: int = 0  # status ok and a yes/no verdict that could be read
    correct: int = 0
    unjudged: int = 0  # status ok but no readable verdict
    accuracy: float | None = None
    accuracy_ci: tuple[float, float] = (0.0, 1.0)
    accuracy_boot_ci: tuple[float, float] | None = None  # only when some case was judged more than once
    rubric_judged: int = 0
    rubric_correct: int = 0
    rubric_accuracy: float | None = None
    rubric_ci: tuple[float, float] = (0.0, 1.0)
    leaks: int = 0  # attempts whose doctor was shown the diagnosis in a test result
    leak_rate: float | None = None  # over ok attempts
    leak_ci: tuple[float, float] = (0.0, 1.0)
    leak_prone_cases: int = 0  # distinct cases whose own data contains the diagnosis
    accuracy_without_leaks: float | None = None
    judged_without_leaks: int = 0
    correct_without_leaks: int = 0
    accuracy_without_leaks_ci: tuple[float, float] = (0.0, 1.0)
    mean_turns: float | None = None
    mean_questions: float | None = None
    mean_tests: float | None = None
    tokens_per_case: dict[str, float] = field(default_factory=dict)  # role -> mean input+output tokens
    mean_input_tokens: float | None = None
    mean_output_tokens: float | None = None
    mean_model_seconds: float | None = None
    mean_wall_seconds: float | None = None
    cache_hits: int = 0
    cache_misses: int = 0
    cache_hit_rate: float | None = None
    upstream_judged: int = 0  # attempts with upstream's exact-"yes" verdict recorded
    upstream_correct: int = 0
    upstream_disagreements: int = 0  # attempts that rule would have scored differently
    # Finished attempts per image status (cases with an image only; see simulations.case_images.image_status), and
    # accuracy without the attempts whose image could not be had (they ran without the image they are about).
    image_statuses: dict[str, int] = field(default_factory=dict)
    image_reads: int = 0
    judged_without_unavailable: int = 0
    correct_without_unavailable: int = 0
    accuracy_without_unavailable: float | None = None
    accuracy_without_unavailable_ci: tuple[float, float] = (0.0, 1.0)
    # What the finished attempts cost (USD: visits for question rounds plus test fees), the tests the fee table did
    # not know (counted once per attempt and name), orders refused for safety or budget, attempts that ended over
    # their budget (the budgeted panel must have none) and panel role calls without usable output.
    mean_cost: float | None = None
    median_cost: float | None = None
    mean_cost_visits: float | None = None
    mean_cost_tests: float | None = None
    unmatched_tests: int = 0
    blocked_orders: int = 0
    over_budget: int = 0
    panel_failed_roles: int = 0
    # Calibration of the final differential over the attempts that recorded one with every item judged (see
    # calibration_cases); None when there are none. ``calibration_left_out``: finished attempts with a differential
    # that could not be scored (an item unjudged, or a probability outside [0, 1]).
    calibration: CalibrationSummary | None = None
    calibration_left_out: int = 0


@dataclass
class RunMetrics:
    overall: GroupMetrics
    by_dataset: dict[str, GroupMetrics]
    by_bias: dict[str, GroupMetrics]
    by_turns: list[tuple[str, int, int]]  # (turns bucket label, judged attempts, correct)
    turns_histogram: list[tuple[int, int]]  # (turns used, ok attempts)
    # Per arm ("single", "panel", "panel:<variant>") in first-seen order; whether any attempt recorded a cost (runs
    # made before the cost ledger did not) and whether any recorded a final differential.
    by_arm: dict[str, GroupMetrics] = field(default_factory=dict)
    has_cost: bool = False
    has_differentials: bool = False


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def calibration_cases(results: Sequence[AttemptResult]) -> tuple[list[CalibrationCase], int]:
    """The calibration case of every finished attempt with a final differential, and how many such attempts could
    not be scored: one whose items are not all judged (``correct`` True or False) or whose probabilities are not
    numbers in [0, 1]. An unjudged item is left out rather than counted wrong: that would score the judge, not
    the probabilities."""
    cases: list[CalibrationCase] = []
    left_out = 0
    for r in results:
        if r.status != "ok" or not r.differential:
            continue
        items = [(str(d.get("diagnosis")), d.get("probability")) for d in r.differential]
        matches = [d.get("correct") for d in r.differential]
        if not all(isinstance(m, bool) for m in matches) or not all(
                isinstance(p, int | float) and not isinstance(p, bool) for _, p in items):
            left_out += 1
            continue
        try:
            cases.append(case_from_matches([(name, float(p)) for name, p in items], matches))
        except ValueError:
            left_out += 1
    return cases, left_out


def _cost_metrics(g: GroupMetrics, ok: Sequence[AttemptResult]) -> None:
    costs = [r.cost for r in ok]
    g.mean_cost = _mean(costs)
    g.median_cost = statistics.median(costs) if costs else None
    g.mean_cost_visits = _mean([r.cost_visits for r in ok])
    g.mean_cost_tests = _mean([r.cost_tests for r in ok])
    g.unmatched_tests = sum(len(set(r.unmatched_tests)) for r in ok)
    g.blocked_orders = sum(r.blocked_orders for r in ok)
    # A cent of slack: the ledger sums floats, and a budget met exactly must not read as exceeded.
    g.over_budget = sum(1 for r in ok if r.budget is not None and r.cost > r.budget + 0.005)
    g.panel_failed_roles = sum(r.panel_failed_roles for r in ok)


def has_cost(results: Sequence[AttemptResult]) -> bool:
    """Whether the run recorded what its consultations cost: an arm other than the single doctor, or any charge,
    unmatched test or blocked order (a run from before the cost ledger has none of these)."""
    return any(r.arm != SINGLE_ARM or r.cost > 0 or r.cost_visits > 0 or r.unmatched_tests or r.blocked_orders
               for r in results)


def group_metrics(results: Sequence[AttemptResult], *, seed: int = 0) -> GroupMetrics:
    """Aggregate one group of attempts (already the latest result per attempt key)."""
    ok = [r for r in results if r.status == "ok"]
    judged = [r for r in ok if r.correct is not None]
    correct = sum(1 for r in judged if r.correct)
    g = GroupMetrics(attempts=len(results), ok=len(ok), errors=len(results) - len(ok), judged=len(judged),
                     correct=correct, unjudged=len(ok) - len(judged))
    g.accuracy, g.accuracy_ci = ratio(correct, len(judged)), wilson_interval(correct, len(judged))
    per_case: dict[str, list[float]] = defaultdict(list)
    for r in judged:
        per_case[f"{r.dataset}/{r.case_id}"].append(1.0 if r.correct else 0.0)
    if any(len(values) > 1 for values in per_case.values()):
        g.accuracy_boot_ci = bootstrap_interval(per_case, seed=seed)

    rubric = [r for r in ok if r.rubric is not None and r.rubric.correct is not None]
    g.rubric_judged, g.rubric_correct = len(rubric), sum(1 for r in rubric if r.rubric and r.rubric.correct)
    g.rubric_accuracy, g.rubric_ci = ratio(g.rubric_correct, g.rubric_judged), wilson_interval(
        g.rubric_correct, g.rubric_judged)

    g.leaks = sum(1 for r in ok if r.leak)
    g.leak_rate, g.leak_ci = ratio(g.leaks, len(ok)), wilson_interval(g.leaks, len(ok))
    g.leak_prone_cases = len({(r.dataset, r.case_id) for r in results if r.case_leak_prone})
    clean = [r for r in judged if not r.leak]
    g.judged_without_leaks, g.correct_without_leaks = len(clean), sum(1 for r in clean if r.correct)
    g.accuracy_without_leaks = ratio(g.correct_without_leaks, g.judged_without_leaks)
    g.accuracy_without_leaks_ci = wilson_interval(g.correct_without_leaks, g.judged_without_leaks)

    g.mean_turns = _mean([r.turns for r in ok])
    g.mean_questions = _mean([r.questions for r in ok])
    g.mean_tests = _mean([r.tests for r in ok])
    roles = sorted({role for r in ok for role in r.usage})
    g.tokens_per_case = {
        role: sum(u.input_tokens + u.output_tokens for r in ok if (u := r.usage.get(role)) is not None) / len(ok)
        for role in roles
    }
    g.mean_input_tokens = _mean([r.input_tokens for r in ok])
    g.mean_output_tokens = _mean([r.output_tokens for r in ok])
    g.mean_model_seconds = _mean([r.model_seconds for r in ok])
    g.mean_wall_seconds = _mean([r.wall_seconds for r in ok])
    # Errored attempts made calls too, so the cache counts cover every attempt.
    g.cache_hits = sum(r.cache_hits for r in results)
    g.cache_misses = sum(r.cache_misses for r in results)
    g.cache_hit_rate = ratio(g.cache_hits, g.cache_hits + g.cache_misses)

    g.image_statuses = dict(Counter(r.image_status for r in ok if r.image_status is not None))
    g.image_reads = sum(r.image_reads for r in ok)
    available = [r for r in judged if r.image_status != "unavailable"]
    g.judged_without_unavailable = len(available)
    g.correct_without_unavailable = sum(1 for r in available if r.correct)
    g.accuracy_without_unavailable = ratio(g.correct_without_unavailable, g.judged_without_unavailable)
    g.accuracy_without_unavailable_ci = wilson_interval(g.correct_without_unavailable, g.judged_without_unavailable)

    upstream = [r for r in judged if r.verdict is not None and r.verdict.upstream_correct is not None]
    g.upstream_judged = len(upstream)
    g.upstream_correct = sum(1 for r in upstream if r.verdict and r.verdict.upstream_correct)
    g.upstream_disagreements = sum(1 for r in upstream if r.verdict and r.verdict.upstream_correct != r.correct)

    _cost_metrics(g, ok)
    cases, g.calibration_left_out = calibration_cases(results)
    g.calibration = summarise_calibration(cases) if cases else None
    return g


def _turns_bucket(turns: int, width: int) -> tuple[int, str]:
    if turns <= 0 or width == 1:
        return turns, str(turns)
    low = (turns - 1) // width * width + 1
    return low, f"{low}-{low + width - 1}"


def accuracy_by_turns(results: Sequence[AttemptResult], max_buckets: int = 10) -> list[tuple[str, int, int]]:
    """Judged attempts grouped by turns used (buckets of equal width, at most ``max_buckets`` of them)."""
    judged = [r for r in results if r.status == "ok" and r.correct is not None]
    if not judged:
        return []
    width = max(1, math.ceil(max(r.turns for r in judged) / max_buckets))
    buckets: dict[tuple[int, str], list[bool]] = defaultdict(list)
    for r in judged:
        buckets[_turns_bucket(r.turns, width)].append(bool(r.correct))
    return [(label, len(v), sum(v)) for (_, label), v in sorted(buckets.items())]


def summarize(results: Sequence[AttemptResult], *, seed: int = 0) -> RunMetrics:
    """The run's metrics overall, per dataset, per bias condition and per arm (groups in first-seen order)."""
    by_dataset: dict[str, list[AttemptResult]] = defaultdict(list)
    by_bias: dict[str, list[AttemptResult]] = defaultdict(list)
    by_arm: dict[str, list[AttemptResult]] = defaultdict(list)
    for r in results:
        by_dataset[r.dataset].append(r)
        by_bias[r.bias].append(r)
        by_arm[r.arm].append(r)
    histogram = Counter(r.turns for r in results if r.status == "ok")
    return RunMetrics(
        overall=group_metrics(results, seed=seed),
        by_dataset={name: group_metrics(group, seed=seed) for name, group in by_dataset.items()},
        by_bias={name: group_metrics(group, seed=seed) for name, group in by_bias.items()},
        by_turns=accuracy_by_turns(results),
        turns_histogram=sorted(histogram.items()),
        by_arm={name: group_metrics(group, seed=seed) for name, group in by_arm.items()},
        has_cost=has_cost(results),
        has_differentials=any(r.status == "ok" and r.differential for r in results),
    )
