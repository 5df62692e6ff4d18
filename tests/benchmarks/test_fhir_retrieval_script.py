"""`benchmarks/fhir_retrieval.py` runs end to end against a real sekmet-fhir and checks resource counts.

Timings are not asserted (they depend on the machine); what must hold is that the script prints its ratio lines
and exits 0, which it does only when our client and the naive one retrieved identical counts per type.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections import Counter

import pytest

from tests.conftest import REPO_ROOT, SYNTHEA_BUNDLES

SCRIPT = REPO_ROOT / "benchmarks" / "fhir_retrieval.py"


def run_script(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )


@pytest.mark.slow
def test_two_patients_match_counts_and_print_the_ratios() -> None:
    if not (SYNTHEA_BUNDLES.is_dir() and any(SYNTHEA_BUNDLES.glob("*.json"))):
        pytest.skip(f"no Synthea bundles at {SYNTHEA_BUNDLES} (../shared/data is not present on this machine)")
    done = run_script("--repeat", "1", "--limit", "2")
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{done.stderr}"
    assert "RESOURCE COUNTS DIFFER" not in out
    assert "counts: identical per type for 2 patients" in out
    assert "wall time: ours " in out and " vs naive " in out and "(target >= 3x)" in out
    assert "round trips: ours " in out
    for strategy in ("ours $everything", "ours per-type", "naive"):
        assert strategy in out
    assert "Observation" in out.split("resources per type")[1]  # the per-type table has the bulk of the record


def test_absent_data_exits_2_with_a_clear_message(tmp_path) -> None:
    done = run_script("--bundles", str(tmp_path / "nothing-here"), timeout=60.0)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no Synthea bundles" in done.stderr and "nothing-here" in done.stderr


def load_script():  # the benchmarks folder is scripts, not a package
    spec = importlib.util.spec_from_file_location("fhir_retrieval_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def one_pass(bench, counts: dict[str, int], searched: frozenset[str] | None) -> object:
    run = bench.PatientRun(0.1, 1, Counter(counts), Counter(), 0)
    return bench.Pass(0.1, {"p1": run}, [], searched)


def test_count_comparison_fails_on_a_difference_and_notes_types_one_side_left_out() -> None:
    bench = load_script()
    record = {"Patient": 1, "Observation": 20, "Goal": 3}
    naive = one_pass(bench, record, frozenset(bench.NAIVE_TYPES))
    searched = frozenset(bench.NAIVE_TYPES) - {"Goal"}
    passes = {
        bench.EVERYTHING: [one_pass(bench, {"Patient": 1, "Observation": 20, "Claim": 4}, None)],
        bench.PER_TYPE: [one_pass(bench, {"Patient": 1, "Observation": 19}, searched)],
        bench.NAIVE: [naive],
    }
    failures, notes, compared = bench.compare_counts(passes, ["p1"])
    assert failures == ["ours per-type vs naive, patient p1, Observation: 19 vs 20"]
    assert compared == {"Patient", "Observation"}
    assert any("absent from $everything" in n and "Goal 3" in n for n in notes)
    assert any("not searched by naive" in n and "Claim 4" in n for n in notes)
    assert any(n.startswith("ours per-type:") and "not searched by ours" in n and "Goal 3" in n for n in notes)
    # $everything returning a type with a different count than the naive search is a failure too
    passes[bench.EVERYTHING] = [one_pass(bench, {"Patient": 1, "Observation": 20, "Goal": 2}, None)]
    passes[bench.PER_TYPE] = [one_pass(bench, {"Patient": 1, "Observation": 20}, searched)]
    failures, _, _ = bench.compare_counts(passes, ["p1"])
    assert failures == ["ours $everything vs naive, patient p1, Goal: 2 vs 3"]
