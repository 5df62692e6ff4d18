"""Benchmark runs over the simulated clinic: plan, run (concurrent, resumable), record, report, compare.

``make_plan(cases, protocol=..., models=...)`` checks the choices; ``await run_benchmark(plan, run_dir, role_models,
RunOptions(...))`` runs every unfinished attempt into a run directory (``config.json``, ``results.jsonl``,
``transcripts/``); ``write_report(run_dir)`` and ``compare_runs(a, b)`` read it back. Image cases (NEJM) take an
``imaging`` model among the role models, ``make_plan(..., image_setting="start"|"request")`` and the run's image
store and folder in ``RunOptions``; each result says what became of the case's image (``image_status``).
"""

from simulations.bench.compare import Comparison, compare_runs, render_comparison
from simulations.bench.config import ConfigMismatchError, DatasetRef, RunConfig, RunEnvironment
from simulations.bench.datasets import (
    DATASET_NAMES,
    CaseSelectionError,
    Dataset,
    DatasetError,
    DatasetNotFoundError,
    parse_case_list,
    resolve_dataset,
    select_cases,
)
from simulations.bench.plan import Attempt, BenchPlan, make_plan
from simulations.bench.records import AttemptResult
from simulations.bench.report import write_report
from simulations.bench.rundir import LoadedRun, NotARunError, RunDirBusyError, RunDirError, read_run
from simulations.bench.runner import RunEvent, RunOptions, RunSummary, run_benchmark

__all__ = [
    "DATASET_NAMES",
    "Attempt",
    "AttemptResult",
    "BenchPlan",
    "CaseSelectionError",
    "Comparison",
    "ConfigMismatchError",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "DatasetRef",
    "LoadedRun",
    "NotARunError",
    "RunConfig",
    "RunDirBusyError",
    "RunDirError",
    "RunEnvironment",
    "RunEvent",
    "RunOptions",
    "RunSummary",
    "compare_runs",
    "make_plan",
    "parse_case_list",
    "read_run",
    "render_comparison",
    "resolve_dataset",
    "run_benchmark",
    "select_cases",
    "write_report",
]
