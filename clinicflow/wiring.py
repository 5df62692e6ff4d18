"""Wiring: turn settings and command-line choices into chat models per role, cases and consultation set-ups."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel

from agents.backends import ZeroShotImageClassifier, build_chat_model, build_image_classifier, build_image_model
from agents.panel.policy import PanelPolicy
from clinicflow.settings import IMAGE_ROLE, ROLES, TRIAGE_ROLE, Settings
from simulations.arms import PANEL, SINGLE, arm_label, arm_policy
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


def panel_overrides(
    *,
    doctor: str | None = None,
    variant: str | None = None,
    budget: float | None = None,
    ensemble: int | None = None,
    aggregate: str | None = None,
    approve: str | None = None,
    expensive_over: float | None = None,
) -> dict[str, Any]:
    """The ``[panel]`` settings the command line's options override (None: not given, the setting stands).

    The panel-only options imply the panel: ``--variant`` alone means ``--doctor panel``, and ``--ensemble N`` or
    ``--aggregate`` alone mean the ensemble variant. Contradictions are a ValueError naming the options.
    """
    panel_only = [name for name, value in (("--variant", variant), ("--ensemble", ensemble),
                                           ("--aggregate", aggregate)) if value is not None]
    if panel_only and doctor == SINGLE:
        verb, it = ("chooses", "it goes") if len(panel_only) == 1 else ("choose", "they go")
        raise ValueError(f"{' and '.join(panel_only)} {verb} how the panel works: {it} with --doctor panel, "
                         "not --doctor single")
    ensemble_only = [name for name, value in (("--ensemble", ensemble), ("--aggregate", aggregate))
                     if value is not None]
    if ensemble_only and variant not in (None, "ensemble"):
        verb = "sets" if len(ensemble_only) == 1 else "set"
        raise ValueError(f"{' and '.join(ensemble_only)} {verb} up the ensemble variant, not --variant {variant}")
    if ensemble_only and variant is None:
        variant = "ensemble"
    if panel_only and doctor is None:
        doctor = PANEL
    chosen = {"doctor": doctor, "variant": variant, "budget": budget, "ensemble": ensemble, "aggregate": aggregate,
              "approve": approve, "expensive_over": expensive_over}
    return {key: value for key, value in chosen.items() if value is not None}


def doctor_fields(settings: Settings) -> dict[str, Any]:
    """``ConsultationSetup``'s doctor fields from the ``[panel]`` settings: who decides, the panel's policy (panel
    only), the budget (either doctor), the approval policy. A budgeted panel without a budget is a ValueError."""
    chosen = settings.panel
    policy = None
    if chosen.doctor == PANEL and chosen.variant == "budgeted" and chosen.budget is None:
        raise ValueError("the budgeted variant needs a budget: --budget USD (or settings panel.budget)")
    if chosen.doctor == PANEL:
        policy = arm_policy(arm_label(PANEL, chosen.variant), budget=chosen.budget, members=chosen.ensemble,
                            aggregate=chosen.aggregate)
    return {"doctor_mode": chosen.doctor, "panel_policy": policy, "budget": chosen.budget,
            "approve": chosen.approve, "expensive_over": chosen.expensive_over}


def saved_doctor_fields(block: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The doctor fields a consultation started with, from its origin's "doctor" block (``DoctorRules.block()``);
    None for a consultation saved before there was a choice (it ran the single doctor, with the defaults)."""
    if not block:
        return None
    policy = block.get("policy")
    fields: dict[str, Any] = {
        "doctor_mode": str(block.get("mode") or SINGLE),
        "panel_policy": PanelPolicy.from_dict(policy) if policy else None,
        "budget": block.get("budget"),
        "approve": str(block.get("approve") or "none"),
    }
    if block.get("expensive_over") is not None:
        fields["expensive_over"] = float(block["expensive_over"])
    return fields


def describe_doctor(fields: Mapping[str, Any]) -> str:
    """``panel (ensemble of 3, mean); budget $1,500; approval: diagnosis``: the header's doctor line."""
    policy: PanelPolicy | None = fields.get("panel_policy")
    text = str(fields.get("doctor_mode") or SINGLE)
    if text == PANEL and policy is not None:
        text += f" ({policy.variant}" + (f" of {policy.members}, {policy.aggregate}" if policy.members > 1 else "") + ")"
    if fields.get("budget") is not None:
        text += f"; budget ${float(fields['budget']):,.0f}"
    approve = fields.get("approve") or "none"
    text += f"; approval: {approve}"
    if approve in ("expensive", "all") and fields.get("expensive_over") is not None:
        text += f" (expensive from ${float(fields['expensive_over']):,.0f})"
    return text


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
    doctor: Mapping[str, Any] | None = None,
) -> ConsultationSetup:
    """The consultation's set-up; images come from the case (its URL or ``images.image_dir``) and ``image_sources``,
    through ``store`` (None: the case is run without its images, which the transcript then says); ``doctor``: the
    doctor fields (``doctor_fields``; None: from the settings)."""
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
        **(doctor if doctor is not None else doctor_fields(settings)),
    )
