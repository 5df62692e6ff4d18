"""Wiring: turn settings and command-line choices into chat models per role, cases and consultation set-ups."""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from typing import Literal

from langchain_core.language_models import BaseChatModel

from agents.backends import ZeroShotImageClassifier, build_chat_model, build_image_classifier, build_image_model
from clinicflow.settings import IMAGE_ROLE, ROLES, TRIAGE_ROLE, Settings
from simulations.cases import Case, get_demo_case, load_case
from simulations.session import ConsultationSetup
from tools.images import ImageStore


class CaseRefError(ValueError):
    """A case reference that names no case."""


def role_specs(settings: Settings, overrides: dict[str, str | None]) -> dict[str, str]:
    """The spec per role: a command-line override, else the setting."""
    return {role: overrides.get(role) or settings.models.for_role(role) for role in ROLES}


def optional_spec(text: str | None) -> str | None:
    """A spec that may be turned off: None, "" and "none" mean no model."""
    if text is None or text.strip().lower() in ("", "none"):
        return None
    return text.strip()


def imaging_spec(settings: Settings, override: str | None = None) -> str | None:
    """The image reader's spec: a command-line override, else the setting; None (or "none"): no reader."""
    return optional_spec(override if override is not None else settings.models.imaging)


def triage_spec(settings: Settings, override: str | None = None) -> str | None:
    """The zero-shot triage classifier's spec: a command-line override, else the setting; None: no triage."""
    return optional_spec(override if override is not None else settings.images.triage)


# Findings are a short JSON object; a reader that thinks first (MedGemma 1.5) needs room for that too.
IMAGE_READ_TOKENS = 512


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


def build_imaging_model(settings: Settings, spec: str) -> BaseChatModel:
    """The image reader's chat model (hf: image-text weights or an OpenAI-compatible server); ``embedded`` is refused
    by the backend with an error naming hf:google/medgemma-4b-it, since the embedded model cannot see images."""
    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return build_image_model(
        spec,
        temperature=settings.temperature,
        max_new_tokens=IMAGE_READ_TOKENS,
        timeout_s=settings.timeout_s,
        max_retries=settings.max_retries,
        api_key=api_key,
        seed=settings.seed,
    )


def build_triage(spec: str) -> ZeroShotImageClassifier:
    """The zero-shot image classifier (MedSigLIP) for triage; hf: specs only."""
    return build_image_classifier(spec)


def image_store(settings: Settings) -> ImageStore:
    """The content-addressed image cache every command shares (one fetch per source, whichever command made it)."""
    return ImageStore(settings.image_cache_dir, timeout_s=settings.images.timeout_s,
                      max_bytes=settings.images.max_bytes)


def with_imaging(
    settings: Settings,
    specs: dict[str, str],
    models: dict[str, BaseChatModel],
    spec: str | None,
    triage: str | None = None,
) -> tuple[dict[str, str], dict[str, BaseChatModel]]:
    """The role specs and models with the image reader added when a spec is set (built here, not lazily, so a bad
    spec stops the command before the consultation starts), and the triage spec recorded beside it (its
    classifier is not a chat model: see ``build_triage``)."""
    if spec is None:
        return specs, models
    specs = {**specs, IMAGE_ROLE: spec}
    if triage:
        specs[TRIAGE_ROLE] = triage
    return specs, {**models, IMAGE_ROLE: build_imaging_model(settings, spec)}


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
    image_sources: list[str] | None = None,
    store: ImageStore | None = None,
    classifier: ZeroShotImageClassifier | None = None,
) -> ConsultationSetup:
    """The consultation's set-up; images come from the case (its URL or ``images.image_dir``) and ``image_sources``,
    through ``store`` (None: the case is run without its images, which the transcript then says)."""
    setting: Literal["start", "request"] = settings.images.setting
    return ConsultationSetup(
        case=case,
        models=models,
        specs=specs,
        max_turns=settings.max_turns,
        measurement_mode=settings.measurement_mode,
        interactive=interactive,
        doctor_max_new_tokens=doctor_max_new_tokens(settings, specs["reasoning"]),
        case_ref=case_ref,
        image_store=store,
        image_dir=settings.images.image_dir,
        image_sources=list(image_sources or []),
        image_setting=setting,
        image_classifier=classifier,
        download_images=settings.images.download,
    )
