"""The reliability diagram and the accuracy-cost scatter as SVG (known bins and points -> known marks and positions),
and the metrics behind them: calibration cases from result lines, cost aggregates, and when a run has any."""

from __future__ import annotations

import re
from typing import Any

import pytest

from simulations.bench.calibration import ReliabilityBin, case_from_matches, reliability_bins
from simulations.bench.metrics import calibration_cases, group_metrics, has_cost, summarize
from simulations.bench.plots import HEIGHT, Point, reliability_diagram, scatter_plot
from simulations.bench.records import AttemptResult
from simulations.bench.report_html import OPTIONAL_PLOT_IDS, reliability_plot_id, render_plot


def _result(case: str = "c1", **extra: Any) -> AttemptResult:
    base: dict[str, Any] = {"run_id": "r", "attempt": f"{case}|none|0", "case_id": case, "dataset": "d",
                            "repeat": 0, "seed": 1, "protocol": "clinicflow", "measurement_mode": "normal-readings",
                            "status": "ok", "correct": True}
    return AttemptResult(**{**base, **extra})


def _texts(svg: str, css: str) -> list[str]:
    return re.findall(rf'<text class="{css}"[^>]*>([^<]+)</text>', svg)


def test_reliability_diagram_of_known_bins() -> None:
    # three cases at 0.7 (two right) and one at 0.25 (wrong): bins 70-80% (observed 2/3) and 20-30% (0/1)
    cases = [case_from_matches([("a", 0.7)], [True]), case_from_matches([("a", 0.7)], [True]),
             case_from_matches([("a", 0.7)], [False]), case_from_matches([("a", 0.25), ("b", 0.5)], [False, False])]
    bins = reliability_bins(cases)
    svg = reliability_diagram(bins, title="R")
    # the 0.25/0.5 case's top item is b at 0.5: bin 50-60%, wrong
    assert _texts(svg, "observed") == ["0%", "67%"]
    assert _texts(svg, "count") == ["1", "3"]
    # plot area: x 60..624 over [0, 1], y 210 (0%) .. 40 (100%)
    # each bar spans its bin less a pixel either side and rises to the observed frequency (2/3 of 170 px = 113.3);
    # an observed 0% keeps a hairline so the bin still shows
    bars = re.findall(r'<rect class="bar" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', svg)
    assert bars == [("343.0", "210.0", "54.4", "0.5"), ("455.8", "96.7", "54.4", "113.3")]
    assert re.search(r'<line class="diagonal" x1="60.0" y1="210.0" x2="624.0" y2="40.0"', svg)
    # the dot sits at the bin's mean prediction (0.7 -> x = 60 + 564 * 0.7 = 454.8)
    assert re.findall(r'<circle class="mean-predicted" cx="([\d.]+)" cy="([\d.]+)"', svg) == [
        ("342.0", "210.0"), ("454.8", "96.7")]
    assert "70%-80%: 3 cases, mean predicted 70%, observed 67%" in svg


def test_reliability_diagram_without_cases_explains_itself() -> None:
    empty = [ReliabilityBin(i / 10, (i + 1) / 10, 0, None, None) for i in range(10)]
    svg = reliability_diagram(empty, title="R", empty_text="No final differential to score.")
    assert 'class="empty"' in svg and "No final differential to score." in svg and 'class="bar"' not in svg


def test_scatter_places_cheaper_left_and_more_accurate_higher() -> None:
    svg = scatter_plot([Point("cheap <b>", 100.0, 0.4, 0.2, 0.6), Point("dear", 900.0, 0.8, 0.6, 0.9),
                        Point("nothing judged", 50.0, None)], title="S & T")
    circles = re.findall(r'<circle class="point" cx="([\d.]+)" cy="([\d.]+)"', svg)
    (x1, y1), (x2, y2) = [(float(x), float(y)) for x, y in circles]
    assert x1 < x2 and y2 < y1
    # y is fixed 0-100%: 40% -> 210 - 170 * 0.4 = 142
    assert y1 == pytest.approx(142.0)
    assert "<b>" not in svg and "cheap &lt;b&gt;" in svg and "S &amp; T" in svg
    assert _texts(svg, "unplaced") == ["no judged attempts: nothing judged"]
    assert svg.count('class="whisker"') == 2
    assert 0 < max(float(y) for _, y in circles) < HEIGHT


def test_scatter_with_no_judged_point_is_empty() -> None:
    svg = scatter_plot([Point("a", 10.0, None)], title="S", empty_text="No judged attempts yet.")
    assert 'class="empty"' in svg and 'class="point"' not in svg


def test_calibration_cases_leave_out_unjudged_and_invalid_differentials() -> None:
    results = [
        _result("a", differential=[{"diagnosis": "X", "probability": 0.6, "correct": True}]),
        _result("b", differential=[{"diagnosis": "X", "probability": 0.6, "correct": None}]),
        _result("c", differential=[{"diagnosis": "X", "probability": 1.4, "correct": False}]),
        _result("d", differential=[{"diagnosis": "X", "probability": "high", "correct": False}]),
        _result("e", differential=[]),  # no differential: neither a case nor left out
        _result("f", status="error", differential=[{"diagnosis": "X", "probability": 0.6, "correct": True}]),
    ]
    cases, left_out = calibration_cases(results)
    assert [c.correct_index for c in cases] == [0] and left_out == 3
    g = group_metrics(results)
    assert g.calibration is not None and g.calibration.n == 1 and g.calibration_left_out == 3
    assert g.calibration.brier == pytest.approx((0.6 - 1) ** 2 + 0.4 ** 2)


def test_cost_aggregates_and_when_a_run_has_costs() -> None:
    results = [_result("a", cost=300.0, cost_visits=1, unmatched_tests=["Zeta", "Zeta"], budget=500.0),
               _result("b", cost=700.0, cost_visits=1, cost_tests=400.0, blocked_orders=2, budget=500.0),
               _result("c", cost=1100.0, cost_visits=2, cost_tests=500.0, budget=None),
               _result("d", status="error", cost=9999.0)]
    g = group_metrics(results)
    assert (g.mean_cost, g.median_cost) == (700.0, 700.0)  # finished attempts only
    assert g.mean_cost_visits == pytest.approx(4 / 3) and g.mean_cost_tests == pytest.approx(300.0)
    assert (g.unmatched_tests, g.blocked_orders, g.over_budget) == (1, 2, 1)
    assert has_cost(results)
    assert not has_cost([_result("a"), _result("b", correct=False)])
    assert has_cost([_result("a", arm="panel:instant")])  # an instant panel may well cost nothing
    m = summarize(results)
    assert list(m.by_arm) == ["single"] and m.has_cost and not m.has_differentials


def test_optional_plots_render_and_arm_ids_resolve() -> None:
    results = [_result("a", arm="single", cost=300.0,
                       differential=[{"diagnosis": "X", "probability": 0.9, "correct": True}]),
               _result("a", arm="panel:budgeted", cost=600.0, correct=False,
                       differential=[{"diagnosis": "Y", "probability": 0.8, "correct": False}])]
    m = summarize(results)
    for plot_id in OPTIONAL_PLOT_IDS:
        assert render_plot(plot_id, m).startswith("<svg")
    assert reliability_plot_id("panel:budgeted") == "reliability-arm-panel-budgeted"
    svg = render_plot("reliability-arm-panel-budgeted", m)
    assert "(panel:budgeted)" in svg and _texts(svg, "observed") == ["0%"]
    with pytest.raises(KeyError):
        render_plot("reliability-arm-nope", m)
