"""Wiring for benchmark runs: command-line choices and settings turned into a plan, a run directory and models."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel

from clinicflow import wiring
from clinicflow.settings import IMAGE_ROLE, ROLES, TRIAGE_ROLE, Settings
from simulations.arms import DEFAULT_MEMBERS, parse_arms
from simulations.bench import BenchPlan, Dataset, RunConfig, make_plan, parse_case_list, resolve_dataset, select_cases
from simulations.protocols import AGENTCLINIC_MAX_NEW_TOKENS

if TYPE_CHECKING:
    from agents.backends import ZeroShotImageClassifier
    from simulations.bench.distributed import WorkerImages
    from tools.images import ImageStore


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
    # The arms (``--doctor`` and ``--variant``, each repeatable or comma lists), the budgeted arm's budget (USD), and
    # the ensemble arm's panels and their aggregation.
    doctors: Sequence[str] = ("single",)
    variants: Sequence[str] = ()
    budget: float | None = None
    ensemble: int = DEFAULT_MEMBERS
    aggregate: str = "mean"


def load_datasets(settings: Settings, choices: BenchChoices) -> list[Dataset]:
    data_dir = choices.data_dir or settings.bench.data_dir
    return [resolve_dataset(name, data_dir, skip_bad=choices.skip_bad) for name in choices.datasets]


def build_plan(settings: Settings, choices: BenchChoices, specs: dict[str, str]) -> tuple[BenchPlan, list[Dataset]]:
    """The plan of a run: the datasets' selected cases under the chosen protocol, models and rules."""
    arms = parse_arms(choices.doctors, choices.variants)
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
        image_setting=settings.images.setting,
        arms=arms,
        budget=choices.budget,
        ensemble_members=choices.ensemble,
        ensemble_aggregate=choices.aggregate,
    )
    return plan, datasets


def default_run_dir(settings: Settings, plan: BenchPlan) -> Path:
    """``<runs dir>/<datasets>-<protocol>-<config hash>``: the same command finds the same directory (and resumes),
    while a changed configuration gets its own (a run without arms hashes as it did before arms existed)."""
    digest = hashlib.sha256(plan.config.identity_json().encode()).hexdigest()[:8]
    names = "+".join(d.name for d in plan.config.datasets)
    return settings.bench.runs_dir / f"{names}-{plan.config.protocol}-{digest}"


def run_specs(settings: Settings, overrides: dict[str, str | None]) -> dict[str, str]:
    """The spec per role of a run: the text roles always, ``imaging`` when a reader is set, and ``triage`` beside it
    (a triage model only adds scores to reads, so it is dropped without a reader)."""
    specs = wiring.role_specs(settings, overrides)
    reader = wiring.imaging_spec(settings, overrides.get(IMAGE_ROLE))
    if reader is not None:
        specs[IMAGE_ROLE] = reader
        triage = wiring.triage_spec(settings, overrides.get(TRIAGE_ROLE))
        if triage:
            specs[TRIAGE_ROLE] = triage
    return specs


def build_models(settings: Settings, specs: dict[str, str]) -> dict[str, BaseChatModel]:
    """One chat model per distinct spec, shared by every attempt (local weights load once, behind one lock); the
    image reader is built by the image backends, and the triage classifier separately (``build_classifier``)."""
    text = {role: spec for role, spec in specs.items() if role in ROLES}
    models = wiring.build_role_models(settings, text)
    if specs.get(IMAGE_ROLE):
        models[IMAGE_ROLE] = wiring.build_imaging_model(settings, specs[IMAGE_ROLE])
    return models


def build_classifier(specs: dict[str, str]) -> ZeroShotImageClassifier | None:
    """The run's triage classifier, when its specs name one."""
    return wiring.build_triage(specs[TRIAGE_ROLE]) if specs.get(TRIAGE_ROLE) else None


def worker_model_factory(settings: Settings) -> Callable[[RunConfig], dict[str, BaseChatModel]]:
    """For ``bench worker``: build a run's models from its stored config (specs, temperature, seed), with this
    machine's settings for the rest (API key, timeouts, model cache)."""

    def build(config: RunConfig) -> dict[str, BaseChatModel]:
        local = settings.model_copy(update={"temperature": config.temperature, "seed": config.seed})
        return build_models(local, dict(config.models))

    return build


def worker_images(settings: Settings) -> WorkerImages:
    """For ``bench worker``: this machine's image cache, image folder and download rule (the enqueuing machine's
    paths mean nothing here), and a triage classifier built from a run's config when it names one."""
    from simulations.bench.distributed import WorkerImages  # Celery loads only for the worker command

    return WorkerImages(
        store=wiring.image_store(settings),
        image_dir=settings.images.image_dir,
        download=settings.images.download,
        classifier_factory=lambda config: build_classifier(dict(config.models)),
    )


def _has_images(settings: Settings, plan: BenchPlan) -> bool:
    return settings.images.image_dir is not None or any(case.image_url for case in plan.cases)


def image_store_for(settings: Settings, plan: BenchPlan) -> ImageStore | None:
    """The shared image cache when some case may have an image (one fetch per image across runs and commands);
    None for text-only datasets, so their runs record no image cache."""
    return wiring.image_store(settings) if _has_images(settings, plan) else None


def image_notes(settings: Settings, plan: BenchPlan, datasets: Sequence[Dataset]) -> list[str]:
    """Warnings for a run whose case images will not be read: no reader, or no way to get the images."""
    nejm = [d.name for d in datasets if d.name.startswith("nejm")]
    if not nejm and not any(case.image_url for case in plan.cases):
        return []
    what = f"{' and '.join(nejm)} cases" if nejm else "cases with images"
    notes = []
    if IMAGE_ROLE not in plan.config.models:
        notes.append(f"{what} run without an image reader (--imaging): their images will be marked no_reader and "
                     "the doctor works from the text alone; use --imaging hf:google/medgemma-4b-it (GPU) or "
                     "openai:google/medgemma-4b-it@http://HOST:8000/v1 to read them.")
    if settings.images.image_dir is None and not settings.images.download:
        notes.append(f"{what}: downloads are off (--no-download) and there is no --image-dir, so their images "
                     "will be marked unavailable.")
    return notes
