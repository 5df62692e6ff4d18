"""Confidence intervals, McNemar and the run aggregates, against values computed by hand."""

from __future__ import annotations

import math
import re

import pytest

from simulations.bench.metrics import bootstrap_interval, mcnemar, summarize, wilson_interval
from simulations.bench.plots import Bar, bar_chart, histogram, nice_ticks
from simulations.bench.records import AttemptError, AttemptResult, JudgeScore, RoleUsage, RubricScore, attempt_key
from simulations.bench.report_html import PLOT_IDS, render_plot


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [(8, 10, (0.4902, 0.9433)), (0, 10, (0.0, 0.2775)), (50, 100, (0.4038, 0.5962)), (10, 10, (0.7225, 1.0))],
)
def test_wilson_interval_known_values(successes: int, n: int, expected: tuple[float, float]) -> None:
    low, high = wilson_interval(successes, n)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_interval_of_nothing_is_uninformative() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_mcnemar_known_values() -> None:
    m = mcnemar(10, 2)
    assert m.p_value == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert round(m.p_value, 5) == 0.03857
    assert m.statistic == pytest.approx(49 / 12)
    assert round(m.statistic, 4) == 4.0833
    assert round(m.p_chi2, 5) == 0.04331
    # symmetric in which run was better
    assert mcnemar(2, 10).p_value == m.p_value


def test_mcnemar_balanced_and_empty() -> None:
    balanced = mcnemar(7, 7)
    assert balanced.p_value == 1.0
    assert balanced.statistic == 0.0
    empty = mcnemar(0, 0)
    assert (empty.b, empty.c, empty.statistic, empty.p_value, empty.p_chi2) == (0, 0, 0.0, 1.0, 1.0)
    # one discordant pair: P = min(1, 2 * 0.5) = 1
    assert mcnemar(1, 0).p_value == 1.0
    assert mcnemar(6, 0).p_value == pytest.approx(2 / 64)


def test_mcnemar_large_counts_stay_finite() -> None:
    m = mcnemar(600, 400)
    assert 0.0 < m.p_value < 1e-9
    assert m.p_chi2 == pytest.approx(math.erfc(math.sqrt((199**2 / 1000) / 2)))


def _cases(n: int) -> dict[str, list[float]]:
    # 3 repeats per case; cases alternate between mostly right and mostly wrong
    return {f"c{i}": ([1.0, 1.0, 0.0] if i % 2 else [0.0, 0.0, 1.0]) for i in range(n)}


def test_bootstrap_is_deterministic_and_contains_the_mean() -> None:
    data = _cases(20)
    first = bootstrap_interval(data, seed=3)
    assert first == bootstrap_interval(data, seed=3)
    # the seed is really used (continuous values, so two seeds agreeing on both ends would be a coincidence)
    varied = {f"c{i}": [((i * 37) % 11) / 11, ((i * 53) % 7) / 7] for i in range(30)}
    assert bootstrap_interval(varied, seed=3) != bootstrap_interval(varied, seed=4)
    mean = sum(sum(v) for v in data.values()) / sum(len(v) for v in data.values())
    assert first[0] < mean < first[1]
    assert 0.0 <= first[0] and first[1] <= 1.0


def test_bootstrap_narrows_with_more_cases() -> None:
    small = bootstrap_interval(_cases(10), seed=1)
    large = bootstrap_interval(_cases(200), seed=1)
    assert (large[1] - large[0]) < (small[1] - small[0]) / 2


def test_bootstrap_resamples_whole_cases() -> None:
    # Every case is all-right or all-wrong: the cluster bootstrap must be wider than one that treated the 10 values
    # of each case as independent (with 4 cases, drawing the same case 4 times is likely enough to reach 0 or 1).
    low, high = bootstrap_interval({"a": [1.0] * 10, "b": [0.0] * 10, "c": [1.0] * 10, "d": [0.0] * 10}, seed=0)
    assert low <= 0.125 and high >= 0.875
    assert bootstrap_interval({}) == (0.0, 1.0)


def _result(case: str, *, bias: str = "none", repeat: int = 0, status: str = "ok", correct: bool | None = None,
            dataset: str = "medqa", **extra: object) -> AttemptResult:
    return AttemptResult(
        run_id="r", attempt=attempt_key(case, bias, repeat), case_id=case, dataset=dataset, bias=bias, repeat=repeat,
        seed=1, protocol="clinicflow", measurement_mode="strict", status=status, correct=correct,
        error=AttemptError(type="ModelError", message="unreachable") if status == "error" else None, **extra,
    )


def _sample() -> list[AttemptResult]:
    usage = {"reasoning": RoleUsage(calls=3, input_tokens=900, output_tokens=100),
             "patient": RoleUsage(calls=2, input_tokens=150, output_tokens=50)}
    return [
        _result("c1", correct=True, turns=4, questions=3, tests=1, usage=usage, cache_hits=3, cache_misses=1,
                rubric=RubricScore(total=5, correct=True, method="model"),
                verdict=JudgeScore(correct=True, method="model", upstream_correct=False)),
        _result("c2", correct=False, turns=8, questions=5, tests=3, leak=True, case_leak_prone=True,
                rubric=RubricScore(total=2, correct=False, method="model"),
                verdict=JudgeScore(correct=False, method="model", upstream_correct=False)),
        _result("c3", status="error", cache_misses=2),
        _result("c4", correct=None, turns=20),  # finished, but the verdict could not be read
        _result("c5", correct=True, turns=6, tests=2, leak=True, case_leak_prone=True, dataset="nejm"),
        _result("c1", bias="doctor:recency", correct=True, turns=4),
        _result("c1", bias="doctor:recency", repeat=1, correct=False, turns=12),
    ]


def test_summarize_counts_accuracy_errors_and_leaks() -> None:
    m = summarize(_sample())
    g = m.overall
    assert (g.attempts, g.ok, g.errors, g.judged, g.unjudged, g.correct) == (7, 6, 1, 5, 1, 3)
    assert g.accuracy == pytest.approx(3 / 5)
    assert g.accuracy_ci == pytest.approx(wilson_interval(3, 5))
    assert (g.rubric_judged, g.rubric_correct, g.rubric_accuracy) == (2, 1, 0.5)
    assert g.leaks == 2 and g.leak_rate == pytest.approx(2 / 6)
    assert g.leak_prone_cases == 2
    assert (g.judged_without_leaks, g.correct_without_leaks) == (3, 2)
    assert g.mean_turns == pytest.approx((4 + 8 + 20 + 6 + 4 + 12) / 6)
    assert g.tokens_per_case == {"patient": pytest.approx(200 / 6), "reasoning": pytest.approx(1000 / 6)}
    assert (g.cache_hits, g.cache_misses, g.cache_hit_rate) == (3, 3, 0.5)
    assert (g.upstream_judged, g.upstream_correct, g.upstream_disagreements) == (2, 0, 1)
    # case c1 has two judged attempts (two bias conditions), so the cluster bootstrap applies
    assert g.accuracy_boot_ci is not None


def test_summarize_groups_per_bias_and_dataset() -> None:
    m = summarize(_sample())
    assert list(m.by_bias) == ["none", "doctor:recency"]
    none, recency = m.by_bias["none"], m.by_bias["doctor:recency"]
    assert (none.attempts, none.judged, none.correct, none.errors) == (5, 3, 2, 1)
    assert (recency.attempts, recency.judged, recency.correct) == (2, 2, 1)
    assert none.accuracy_boot_ci is None  # one judged attempt per case: no bootstrap across repeats
    assert recency.accuracy_boot_ci is not None  # c1 twice
    assert m.by_dataset["nejm"].accuracy == 1.0
    assert m.by_dataset["medqa"].judged == 4


def test_accuracy_by_turns_and_histogram() -> None:
    m = summarize(_sample())
    # judged attempts used 4, 8, 6, 4 and 12 turns: max 12 -> buckets of 2 turns
    assert m.by_turns == [("3-4", 2, 2), ("5-6", 1, 1), ("7-8", 1, 0), ("11-12", 1, 0)]
    assert m.turns_histogram == [(4, 2), (6, 1), (8, 1), (12, 1), (20, 1)]


def test_summarize_of_nothing() -> None:
    m = summarize([])
    assert m.overall.accuracy is None and m.overall.cache_hit_rate is None
    assert m.by_turns == [] and m.by_dataset == {}


def _drawn(svg: str) -> int:
    return len(re.findall(r"<(rect|path|line|circle)\b", svg))


@pytest.mark.parametrize("plot_id", PLOT_IDS)
def test_plots_with_no_judged_attempts_explain_themselves(plot_id: str) -> None:
    svg = render_plot(plot_id, summarize([_result("c3", status="error")]))
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert 'class="empty"' in svg
    assert _drawn(svg) >= 1
    assert 'class="bar"' not in svg


@pytest.mark.parametrize("plot_id", PLOT_IDS)
def test_plots_with_one_attempt_draw_bars(plot_id: str) -> None:
    usage = {"reasoning": RoleUsage(calls=1, input_tokens=10, output_tokens=5)}
    svg = render_plot(plot_id, summarize([_result("c1", correct=True, turns=3, usage=usage)]))
    assert 'class="bar"' in svg
    assert 'class="empty"' not in svg


def test_bar_chart_escapes_labels_and_marks_missing_values() -> None:
    svg = bar_chart([Bar("<b>x</b>", 0.5, 0.2, 0.8), Bar("none yet", None)], title="t & u", percent=True)
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert "t &amp; u" in svg
    assert "n/a" in svg
    assert 'class="errorbar"' in svg
    assert histogram([], title="h", empty_text="nothing").count('class="empty"') == 1


def test_nice_ticks() -> None:
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(1000)[-1] >= 1000
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(2, integer=True) == [0, 1, 2]  # counts get whole-number ticks
    assert nice_ticks(2) == [0, 0.5, 1.0, 1.5, 2.0]
