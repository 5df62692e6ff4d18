"""``compare_runs`` on two runs built by hand with known discordant pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulations.bench.compare import compare_runs, render_comparison
from simulations.bench.config import DatasetRef, RunConfig, RunEnvironment
from simulations.bench.records import AttemptError, AttemptResult, attempt_key

Outcomes = dict[str, bool | None | str]


def _run(root: Path, name: str, outcomes: Outcomes, *, protocol: str = "clinicflow",
         mode: str = "strict", doctor: str = "fake:a", cases: list[str] | None = None) -> Path:
    """A run directory whose attempt ``case`` has outcome True/False (judged), None (unjudged) or "error"."""
    run = root / name
    run.mkdir()
    config = RunConfig(protocol=protocol, measurement_mode=mode, case_ids=cases or sorted(outcomes),
                       datasets=[DatasetRef(name="demo", cases=len(outcomes))], models={"reasoning": doctor})
    (run / "config.json").write_text(json.dumps({
        "run_id": name, "config": config.model_dump(mode="json"),
        "environment": RunEnvironment().model_dump(mode="json")}), encoding="utf-8")
    lines = []
    for case, outcome in outcomes.items():
        error = outcome == "error"
        lines.append(AttemptResult(
            run_id=name, attempt=attempt_key(case, "none", 0), case_id=case, dataset="demo", repeat=0, seed=0,
            protocol=protocol, measurement_mode=mode, status="error" if error else "ok",
            error=AttemptError(type="X", message="y") if error else None,
            correct=None if error else outcome,
        ).model_dump_json())
    (run / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run


def _paired(b: int, c: int, both: int, neither: int) -> tuple[Outcomes, Outcomes]:
    a_side: Outcomes = {}
    b_side: Outcomes = {}
    for i, (x, y) in enumerate([(True, False)] * b + [(False, True)] * c + [(True, True)] * both
                               + [(False, False)] * neither):
        a_side[f"case{i:02d}"], b_side[f"case{i:02d}"] = x, y
    return a_side, b_side


def test_mcnemar_and_difference_from_known_pairs(tmp_path: Path) -> None:
    a_side, b_side = _paired(b=10, c=2, both=5, neither=3)
    c = compare_runs(_run(tmp_path, "A", a_side), _run(tmp_path, "B", b_side, doctor="fake:b"))
    assert (c.run_a, c.run_b, c.n_pairs) == ("A", "B", 20)
    assert (c.both, c.only_a, c.only_b, c.neither) == (5, 10, 2, 3)
    assert (c.a_correct, c.b_correct) == (15, 7)
    assert c.accuracy_a == 0.75 and c.accuracy_b == 0.35
    assert c.difference == pytest.approx(-0.40)
    assert (c.mcnemar.b, c.mcnemar.c) == (10, 2)
    assert round(c.mcnemar.p_value, 5) == 0.03857
    assert round(c.mcnemar.statistic, 4) == 4.0833 and round(c.mcnemar.p_chi2, 5) == 0.04331
    assert c.config_differences == [("models", {"reasoning": "fake:a"}, {"reasoning": "fake:b"})]
    assert c.warnings == []
    text = render_comparison(c)
    assert "-40.0 points" in text
    assert "| accuracy (paired) | 75.0% | 35.0% |" in text
    assert "| **A correct** | 5 | 10 |" in text and "| **A wrong** | 2 | 3 |" in text
    assert "exact two-sided p = 0.03857" in text and "p = 0.04331" in text
    assert "| models |" in text


def test_unpaired_attempts_are_counted_not_scored(tmp_path: Path) -> None:
    a = _run(tmp_path, "A", {"c1": True, "c2": False, "c3": "error", "c4": True, "c5": None})
    b = _run(tmp_path, "B", {"c1": True, "c2": True, "c3": True, "c4": "error", "c6": False})
    c = compare_runs(a, b)
    assert c.n_pairs == 2  # c1 and c2: c3/c4 have an error on one side, c5 is unjudged, c5/c6 one-sided
    assert (c.unpaired_a, c.unpaired_b) == (3, 3)
    assert (c.both, c.only_a, c.only_b, c.neither) == (1, 0, 1, 0)
    assert c.difference == pytest.approx(0.5)
    assert "2 paired attempts" in render_comparison(c)
    assert "unpaired: 3 in A, 3 in B" in render_comparison(c)


def test_different_protocol_or_mode_is_flagged(tmp_path: Path) -> None:
    a_side, b_side = _paired(b=1, c=1, both=1, neither=1)
    a = _run(tmp_path, "A", a_side, protocol="agentclinic", mode="normal-readings")
    b = _run(tmp_path, "B", b_side)
    c = compare_runs(a, b)
    assert len(c.warnings) == 2
    assert all("not comparable on equal terms" in w for w in c.warnings)
    assert "agentclinic vs clinicflow" in c.warnings[0]
    assert "normal-readings vs strict" in c.warnings[1]
    names = [name for name, _, _ in c.config_differences]
    assert "protocol" in names and "measurement_mode" in names
    assert "**Warning:** Different protocols" in render_comparison(c)
    assert c.mcnemar.p_value == 1.0


def test_no_pairs_says_why(tmp_path: Path) -> None:
    disjoint = compare_runs(_run(tmp_path, "A", {"c1": True}), _run(tmp_path, "B", {"c2": True}))
    assert disjoint.n_pairs == 0 and disjoint.difference is None and disjoint.accuracy_a is None
    assert any("no attempt" in w and "in common" in w for w in disjoint.warnings)
    assert "n/a" in render_comparison(disjoint)
    unjudged = compare_runs(_run(tmp_path, "C", {"c1": None}), _run(tmp_path, "D", {"c1": "error"}))
    assert any("none was judged on both sides" in w for w in unjudged.warnings)


def test_long_case_lists_are_summarised(tmp_path: Path) -> None:
    a = _run(tmp_path, "A", {"c1": True}, cases=[f"c{i}" for i in range(50)])
    b = _run(tmp_path, "B", {"c1": True}, cases=[f"c{i}" for i in range(40, 100)])
    c = compare_runs(a, b)
    assert ("case_ids", "50 cases", "60 cases (10 in common)") in c.config_differences
