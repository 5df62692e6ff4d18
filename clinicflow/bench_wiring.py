"""Wiring for benchmark runs: command-line choices and settings turned into a plan, a run directory and models."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from clinicflow import wiring
from clinicflow.settings import Settings
from simulations.bench import BenchPlan, Dataset, RunConfig, make_plan, parse_case_list, resolve_dataset, select_cases
from simulations.protocols import AGENTCLINIC_MAX_NEW_TOKENS


@dataclass
class BenchChoices:
    """What ``clinicflow bench run`` was asked for (None: the setting or the protocol's default)."""

    datasets: Sequence[str]
    protocol: str = "clinicflow"
    data_dir: Path | None = None
    limit: int | None = None
    cases: str | None = None
    repeats: int = 1
    biases: Sequence[str] = ("none",)
    measurement_mode: str | None = None
    rubric: bool | None = None
    skip_bad: bool = False


def load_datasets(settings: Settings, choices: BenchChoices) -> list[Dataset]:
    data_dir = choices.data_dir or settings.bench.data_dir
    return [resolve_dataset(name, data_dir, skip_bad=choices.skip_bad) for name in choices.datasets]


def build_plan(settings: Settings, choices: BenchChoices, specs: dict[str, str]) -> tuple[BenchPlan, list[Dataset]]:
    """The plan of a run: the datasets' selected cases under the chosen protocol, models and rules."""
    picked = parse_case_list(choices.cases)
    if picked and len(choices.datasets) > 1:
        raise ValueError("--cases picks cases of one dataset; give a single --dataset with it")
    datasets = load_datasets(settings, choices)
    cases = [case for d in datasets for case in select_cases(d.cases, pick=picked)]
    if choices.limit is not None:
        cases = select_cases(cases, limit=choices.limit)
    doctor_tokens = (AGENTCLINIC_MAX_NEW_TOKENS if choices.protocol == "agentclinic"
                     else wiring.doctor_max_new_tokens(settings, specs["reasoning"]))
    plan = make_plan(
        cases,
        protocol=choices.protocol,
        models=specs,
        measurement_mode=choices.measurement_mode,
        max_turns=settings.max_turns,
        seed=settings.seed if settings.seed is not None else 0,
        temperature=settings.temperature,
        repeats=choices.repeats,
        biases=choices.biases,
        rubric=choices.rubric,
        datasets=[d.ref() for d in datasets],
        max_new_tokens={"reasoning": doctor_tokens},
    )
    return plan, datasets


def default_run_dir(settings: Settings, plan: BenchPlan) -> Path:
    """``<runs dir>/<datasets>-<protocol>-<config hash>``: the same command finds the same directory (and resumes),
    while a changed configuration gets its own."""
    digest = hashlib.sha256(plan.config.model_dump_json().encode()).hexdigest()[:8]
    names = "+".join(d.name for d in plan.config.datasets)
    return settings.bench.runs_dir / f"{names}-{plan.config.protocol}-{digest}"


def build_models(settings: Settings, specs: dict[str, str]) -> dict[str, BaseChatModel]:
    """One chat model per distinct spec, shared by every attempt (local weights load once, behind one lock)."""
    return wiring.build_role_models(settings, specs)


def worker_model_factory(settings: Settings) -> Callable[[RunConfig], dict[str, BaseChatModel]]:
    """For ``bench worker``: build a run's models from its stored config (specs, temperature, seed), with this
    machine's settings for the rest (API key, timeouts, model cache)."""

    def build(config: RunConfig) -> dict[str, BaseChatModel]:
        local = settings.model_copy(update={"temperature": config.temperature, "seed": config.seed})
        return wiring.build_role_models(local, dict(config.models))

    return build
