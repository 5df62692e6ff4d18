"""Wiring: turn settings and command-line choices into chat models per role, cases and consultation set-ups."""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from agents.backends import build_chat_model
from clinicflow.settings import ROLES, Settings
from simulations.cases import Case, get_demo_case, load_case
from simulations.session import ConsultationSetup


class CaseRefError(ValueError):
    """A case reference that names no case."""


def role_specs(settings: Settings, overrides: dict[str, str | None]) -> dict[str, str]:
    """The spec per role: a command-line override, else the setting."""
    return {role: overrides.get(role) or settings.models.for_role(role) for role in ROLES}


# The embedded model rambles past its JSON and runs at ~12 tokens/s on CPU; MedGemma may think before answering.
EMBEDDED_DOCTOR_TOKENS = 96
DEFAULT_DOCTOR_TOKENS = 1024


def doctor_max_new_tokens(settings: Settings, reasoning_spec: str) -> int:
    if settings.max_new_tokens is not None:
        return settings.max_new_tokens
    return EMBEDDED_DOCTOR_TOKENS if reasoning_spec.split("?")[0] == "embedded" else DEFAULT_DOCTOR_TOKENS


def build_role_models(settings: Settings, specs: dict[str, str]) -> dict[str, BaseChatModel]:
    """One chat model per distinct spec, shared by the roles that name it (weights load once)."""
    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    built: dict[str, BaseChatModel] = {}
    for spec in dict.fromkeys(specs.values()):
        built[spec] = build_chat_model(
            spec,
            temperature=settings.temperature,
            max_new_tokens=doctor_max_new_tokens(settings, spec),
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
            api_key=api_key,
            cache_dir=settings.model_cache_dir,
            seed=settings.seed,
        )
    return {role: built[spec] for role, spec in specs.items()}


def case_ref_for(case: str | None, dataset: Path | None, index: int) -> str:
    """A reference that finds the same case again on resume: ``demo:NAME`` or ``FILE#INDEX``."""
    if case and dataset:
        raise CaseRefError("give either --case or --dataset, not both")
    if case:
        return case if ":" in case or "#" in case else f"demo:{case}"
    if dataset:
        return f"{dataset.expanduser().resolve()}#{index}"
    raise CaseRefError("name a case: --case demo:<name> or --dataset FILE --index N (see `clinicflow cases`)")


def resolve_case(ref: str, *, skip_bad: bool = False) -> Case:
    """Load the case a reference names."""
    if ref.startswith("demo:"):
        return get_demo_case(ref)
    path, sep, index = ref.rpartition("#")
    if not sep or not index.isdigit():
        raise CaseRefError(f"case reference {ref!r} is neither demo:<name> nor FILE#INDEX")
    return load_case(Path(path), int(index), skip_bad=skip_bad)


def new_thread_id(case: Case) -> str:
    """A readable, unique consultation id: the case, the time, a random suffix."""
    slug = case.id.replace(":", "-").replace("/", "-")
    return f"{slug}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def consultation_setup(
    settings: Settings,
    case: Case,
    case_ref: str,
    specs: dict[str, str],
    models: dict[str, BaseChatModel],
    *,
    interactive: bool,
) -> ConsultationSetup:
    return ConsultationSetup(
        case=case,
        models=models,
        specs=specs,
        max_turns=settings.max_turns,
        measurement_mode=settings.measurement_mode,
        interactive=interactive,
        doctor_max_new_tokens=doctor_max_new_tokens(settings, specs["reasoning"]),
        case_ref=case_ref,
    )
