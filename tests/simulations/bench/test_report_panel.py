"""The report's arms, cost and calibration parts on a hand-built run of two arms with known costs and differentials:
the numbers (worked out by hand below), the accuracy-cost plot's point placement, the reliability diagrams, and a
run from before arms and costs that shows none of it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from simulations.bench.config import DatasetRef, RunConfig, RunEnvironment
from simulations.bench.records import AttemptResult, attempt_key
from simulations.bench.report import write_report

RUN_ID = "arms-run"
BUDGETED = "panel:budgeted"


def _dx(*items: tuple[str, float, bool | None]) -> list[dict[str, Any]]:
    return [{"diagnosis": name, "probability": p, "correct": right} for name, p, right in items]


def _result(case: str, arm: str, correct: bool, cost: float, differential: list[dict[str, Any]],
            **extra: Any) -> AttemptResult:
    return AttemptResult(
        run_id=RUN_ID, attempt=attempt_key(case, "none", 0, arm), case_id=case, dataset="medqa", repeat=0, seed=1,
        protocol="agentclinic", measurement_mode="normal-readings", status="ok", correct=correct,
        final_diagnosis="Malaria", correct_diagnosis="Malaria", arm=arm, cost=cost, differential=differential,
        turns=4, **extra,
    )


# Calibration by hand (each differential's unclaimed probability is the "other" class):
#   A single/c1  [0.8 right, 0.2]        Brier 0.04 + 0.04 = 0.08         -ln 0.8 = 0.2231  top-1 right at 0.8
#   B single/c2  [0.6, 0.3 right] +0.1   Brier 0.36 + 0.49 + 0.01 = 0.86  -ln 0.3 = 1.2040  top-1 wrong at 0.6
#   C panel/c1   [0.9 right] +0.1        Brier 0.01 + 0.01 = 0.02         -ln 0.9 = 0.1054  top-1 right at 0.9
#   panel/c2 has an unjudged item: left out.
# All: Brier 0.96/3 = 0.320; top-1 Brier (0.04 + 0.36 + 0.01)/3 = 0.137; log loss 1.5325/3 = 0.511;
# ECE (0.2 + 0.6 + 0.1)/3 = 0.300; top-1 2/3; top-3 3/3. Costs: single 600, 338; panel 1000, 1200.
RESULTS = [
    _result("c1", "single", True, 600.0, _dx(("Malaria", 0.8, True), ("Dengue", 0.2, False)), cost_visits=2),
    _result("c2", "single", False, 338.0, _dx(("Typhoid", 0.6, False), ("Malaria", 0.3, True)), cost_visits=1,
            cost_tests=38.0),
    _result("c1", BUDGETED, True, 1000.0, _dx(("Malaria", 0.9, True)), budget=1500.0, cost_tests=700.0,
            cost_visits=1, unmatched_tests=["Zeta potential scan"], blocked_orders=1, panel_failed_roles=2),
    _result("c2", BUDGETED, True, 1200.0, _dx(("Malaria", 0.7, True), ("X", 0.1, None)), budget=1500.0,
            cost_tests=900.0, cost_visits=1),
]


def _run(root: Path, results: list[AttemptResult], **config: Any) -> Path:
    run = root / "run"
    (run / "transcripts").mkdir(parents=True)
    cfg = RunConfig(protocol="agentclinic", measurement_mode="normal-readings", case_ids=["c1", "c2"],
                    datasets=[DatasetRef(name="medqa", path=None, sha256=None, cases=2)], biases=["none"],
                    models={"reasoning": "fake:doctor"}, seed=1, **config)
    document = {"run_id": RUN_ID, "config": cfg.model_dump(mode="json"),
                "environment": RunEnvironment().model_dump(mode="json")}
    (run / "config.json").write_text(json.dumps(document), encoding="utf-8")
    (run / "results.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in results), encoding="utf-8")
    return run


def _figures(page: str) -> dict[str, str]:
    return dict(re.findall(r'<figure class="plot" id="plot-([a-z0-9-]+)">(.*?)</figure>', page, re.DOTALL))


def test_arms_table_and_cost_in_the_headline(tmp_path: Path) -> None:
    text = write_report(_run(tmp_path, RESULTS, arms=["single", BUDGETED], budget=1500.0)).markdown.read_text()
    assert "- **Arms:** single, panel:budgeted" in text and "- **Budget (budgeted arms):** $1,500" in text
    assert "4 recorded of 4 planned (2 cases x 1 bias conditions x 1 repeats x 2 arms)" in text
    # mean (600 + 338 + 1000 + 1200) / 4 = 784.50, median (600 + 1000) / 2 = 800
    assert "| mean / median cost per case | $784.50 / $800 |  | 4 finished |" in text
    assert "| unmatched tests (charged the default price) | 1 |" in text
    assert "| orders blocked (contraindication or budget) | 1 |" in text
    assert "| single | 2 | 2 | 1 | 50.0% | 9.5-90.5% | $469 | $469 | 1.5 | $19 | 0 | 0 | 0 | 0 |" in text
    assert "| panel:budgeted | 2 | 2 | 2 | 100.0% | 34.2-100.0% | $1,100 | $1,100 | 1.0 | $800 | 1 | 1 | 0 | 2 |" \
        in text
    assert re.search(r"\| none \| 4 \| 4 \| 3 \| 75\.0% \|.*\| \$784\.50 \|", text)  # group tables gain a cost
    assert "ended above the budget it ran under" not in text


def test_calibration_section_numbers(tmp_path: Path) -> None:
    text = write_report(_run(tmp_path, RESULTS, arms=["single", BUDGETED], budget=1500.0)).markdown.read_text()
    assert "| all attempts | 3 | 0.320 | 0.137 | 0.511 | 0.300 | 66.7% | 100.0% | 1 |" in text
    # per arm: single is A and B (Brier (0.08 + 0.86) / 2 = 0.470), the panel only C
    assert "| single | 2 | 0.470 | 0.200 | 0.714 | 0.400 | 50.0% | 100.0% | 0 |" in text
    assert "| panel:budgeted | 1 | 0.020 | 0.010 | 0.105 | 0.100 | 100.0% | 100.0% | 1 |" in text
    assert "1 attempt with a differential could not be scored" in text
    bins = text[text.index("### Reliability (all attempts)"):]
    assert "| 60-70% | 1 | 60.0% | 0.0% |" in bins
    assert "| 80-90% | 1 | 80.0% | 100.0% |" in bins
    assert "| 90-100% | 1 | 90.0% | 100.0% |" in bins


def test_accuracy_cost_plot_places_each_arm(tmp_path: Path) -> None:
    page = write_report(_run(tmp_path, RESULTS, arms=["single", BUDGETED], budget=1500.0)).html.read_text()
    figures = _figures(page)
    assert {"accuracy-cost", "reliability", "reliability-arm-single", "reliability-arm-panel-budgeted"} <= set(figures)
    svg = figures["accuracy-cost"]
    points = {title.split(": accuracy")[0]: (float(cx), float(cy)) for cx, cy, title in re.findall(
        r'<circle class="point" cx="([\d.]+)" cy="([\d.]+)" r="5" fill="[^"]+"><title>([^<]+)</title>', svg)}
    assert set(points) == {"single", BUDGETED}
    assert points["single"][0] < points[BUDGETED][0]  # cheaper is further left
    assert points[BUDGETED][1] < points["single"][1]  # more accurate is higher up (SVG y grows downwards)
    assert svg.count('class="whisker"') == 2
    assert "single: accuracy 50% (95% CI 9%-91%), mean cost $469 n=2" in svg
    assert re.findall(r'class="point-label"[^>]*>([^<]+)</text>', svg) == ["single", BUDGETED]


def test_reliability_diagrams_show_observed_frequencies_and_counts(tmp_path: Path) -> None:
    figures = _figures(write_report(_run(tmp_path, RESULTS, arms=["single", BUDGETED])).html.read_text())
    overall = figures["reliability"]
    assert re.findall(r'<text class="observed"[^>]*>([^<]+)</text>', overall) == ["0%", "100%", "100%"]
    assert re.findall(r'<text class="count"[^>]*>([^<]+)</text>', overall) == ["1", "1", "1"]
    assert 'class="diagonal"' in overall
    single = figures["reliability-arm-single"]
    assert re.findall(r'<text class="observed"[^>]*>([^<]+)</text>', single) == ["0%", "100%"]


def test_an_over_budget_attempt_is_flagged(tmp_path: Path) -> None:
    results = [*RESULTS[:3], _result("c2", BUDGETED, True, 1600.0, [], budget=1500.0)]
    text = write_report(_run(tmp_path, results, arms=["single", BUDGETED], budget=1500.0)).markdown.read_text()
    assert "| panel:budgeted | 2 | 2 | 2 | 100.0% | 34.2-100.0% | $1,300 | $1,300 |" in text
    assert re.search(r"\| panel:budgeted \|.*\| 1 \| 2 \|$", text, re.MULTILINE)  # over budget 1, failed roles 2
    assert "**Note:** 1 attempt ended above the budget it ran under." in text


def test_a_run_without_arms_costs_or_differentials_shows_none_of_it(tmp_path: Path) -> None:
    old = [_result("c1", "single", True, 0.0, []), _result("c2", "single", False, 0.0, [])]
    files = write_report(_run(tmp_path, old))
    text = files.markdown.read_text()
    for absent in ("## Arms", "## Calibration", "cost per case", "mean cost", "- **Arms:**", "x 1 arms"):
        assert absent not in text, absent
    figures = _figures(files.html.read_text())
    assert set(figures) == {"accuracy", "turns", "accuracy-by-turns", "tokens", "leaks"}
