"""Settings: the one place clinicflow reads the environment (``CLINICFLOW_*`` variables) and its config file.

Precedence, highest first: command-line options, ``CLINICFLOW_*`` environment variables, the TOML file named by
``CLINICFLOW_CONFIG`` (default ``<user config dir>/clinicflow/config.toml`` when it exists), built-in defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ROLES: tuple[str, ...] = ("reasoning", "patient", "measurement", "judge")
# The image reader is a role apart: it may be unset (images then go unread) and its spec is built by the image
# backends (a processor and an image-text model), not the text ones.
IMAGE_ROLE = "imaging"
# The zero-shot classifier's spec is recorded under this name beside the roles (transcripts, benchmark configs).
TRIAGE_ROLE = "triage"


class RoleModels(BaseModel):
    """A model spec per role; see ``clinicflow models`` for the accepted forms."""

    reasoning: str = Field("embedded", description="The doctor (MedGemma 27B text in production).")
    patient: str = Field("embedded", description="The simulated patient.")
    measurement: str = Field("embedded", description="The simulated laboratory and examiner.")
    judge: str = Field("embedded", description="The moderator who compares diagnoses.")
    imaging: str | None = Field(
        None, description="The image reader (MedGemma 4B in production: hf:google/medgemma-4b-it). None: no image "
        "reader; images are then reported unread."
    )

    @field_validator("imaging", mode="before")
    @classmethod
    def _none_means_unset(cls, value: object) -> object:
        # An environment variable cannot be null: "none" or an empty value turns the reader off.
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    def for_role(self, role: str) -> str:
        return getattr(self, role)


class FhirSettings(BaseModel):
    """Where patient records live and how to reach them (``CLINICFLOW_FHIR__*``; ``[fhir]`` in the config file)."""

    base_url: str | None = Field(
        None, description="The FHIR R4 base URL, e.g. https://ehr.example.org/fhir/R4. Every request stays under it."
    )
    auth: Literal["none", "bearer", "smart"] = Field(
        "none", description="none; bearer (a static token); smart (SMART Backend Services, a signed JWT)."
    )
    # Never written to logs, errors or transcripts.
    token: SecretStr | None = Field(None, description="The bearer token for auth=bearer.")
    client_id: str | None = Field(None, description="SMART client id, registered with the EHR.")
    private_key_file: Path | None = Field(None, description="PEM private key for the SMART JWT assertion.")
    key_id: str | None = Field(None, description="The key's kid, as registered in the JWKS.")
    algorithm: Literal["RS384", "ES384"] = "RS384"
    token_url: str | None = Field(None, description="OAuth token endpoint; unset: from .well-known/smart-configuration.")
    scope: str = "system/*.read"
    allow_writes: bool = Field(False, description="Retrieval is read-only unless this is set.")
    validate_resources: bool = Field(
        True, description="Check every resource with fhir.resources R4B (about 0.5 ms each); invalid ones are kept "
        "with a warning. Turn off only for a server you trust, to fetch large records faster."
    )
    timeout_s: float = Field(30.0, gt=0)
    max_concurrency: int = Field(8, ge=1, le=64, description="Requests in flight at once per server.")
    max_pages: int = Field(100, ge=1, description="Pages followed per search before stopping.")
    max_resources: int = Field(20_000, ge=1, description="Resources read per search before stopping.")
    summary_tokens: int = Field(1200, ge=200, description="Token budget of the record summary the doctor reads.")


class BenchSettings(BaseModel):
    """Benchmark runs (``CLINICFLOW_BENCH__*``; ``[bench]`` in the config file)."""

    data_dir: Path | None = Field(
        None, description="Folder holding the AgentClinic case files (agentclinic_medqa.jsonl, ...), for "
        "--dataset medqa|medqa_ext|nejm|nejm_ext|mimiciv."
    )
    runs_dir: Path = Field(Path("runs/bench"), description="Where run directories go unless --run-dir is given.")
    concurrency: int = Field(4, ge=1, le=1024, description="Case attempts in flight at once.")
    max_connections: int = Field(32, ge=1, le=1024, description="Model calls in flight per remote endpoint.")
    # A string, not a Path: a Path would fold a URL's "//" and mangle it.
    cache_file: str | None = Field(
        None, description="The model-call cache used with --cache: a SQLite file path, or a redis://HOST:PORT/DB "
        "(rediss:// for TLS) URL that workers on many machines share; unset: <cache dir>/model-calls.sqlite."
    )


class ImageSettings(BaseModel):
    """Images of a consultation or a benchmark case (``CLINICFLOW_IMAGES__*``; ``[images]`` in the config file)."""

    cache_dir: Path | None = Field(
        None, description="The content-addressed image cache; unset: <cache dir>/images."
    )
    setting: Literal["request", "start"] = Field(
        "request", description="request: the doctor asks for a read when it wants one; start: every image is read "
        "at intake and the read opens the consultation (AgentClinic's two NEJM settings)."
    )
    triage: str | None = Field(
        None, description="A zero-shot image classifier spec (hf:google/medsiglip-448 in production) whose scores "
        "over the doctor's differential are added to each read; unset: no triage."
    )
    timeout_s: float = Field(30.0, gt=0, description="Per-download timeout for image URLs.")
    max_bytes: int = Field(20_000_000, ge=1024, description="Largest image accepted, in bytes.")
    image_dir: Path | None = Field(
        None, description="A folder of NEJM case images named by case (nejm-0003.jpg, IC20240111.jpg or 3.jpg), "
        "looked up before the case's URL."
    )
    download: bool = Field(True, description="Fetch a case's image from its URL when no local file has it.")

    @field_validator("triage", mode="before")
    @classmethod
    def _none_means_unset(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value


# The names below are the vocabulary of agents.panel.policy and graphs.approvals, restated as Literals so a bad value
# in the environment or the config file is refused when settings load, naming the field and the accepted values.
DoctorMode = Literal["single", "panel"]
PanelVariant = Literal["no-budget", "budgeted", "instant", "questions", "ensemble"]
ApprovalPolicyName = Literal["none", "invasive", "expensive", "diagnosis", "all"]


class PanelSettings(BaseModel):
    """Who diagnoses and under which rules (``CLINICFLOW_PANEL__*``; ``[panel]`` in the config file)."""

    doctor: DoctorMode = Field(
        "single", description="single: the one-node doctor; panel: hypothesis, then test chooser, challenger, "
        "stewardship and checklist side by side, then one consensus action."
    )
    variant: PanelVariant = Field(
        "no-budget", description="How the panel works: no-budget, budgeted (needs budget), instant (diagnoses at "
        "once), questions (asks, never orders tests), ensemble (several independent panels aggregated)."
    )
    budget: float | None = Field(
        None, gt=0, description="USD a consultation may spend (a visit per question round, fee-table prices for "
        "tests); a test that would pass it is refused. Applies to either doctor; required by the budgeted variant."
    )
    ensemble: int = Field(3, ge=2, le=16, description="Independent panels in the ensemble variant.")
    aggregate: Literal["mean", "majority"] = Field(
        "mean", description="How the ensemble's differentials combine: mean probability, or majority of top-1."
    )
    approve: ApprovalPolicyName = Field(
        "none", description="When a clinician must approve at the terminal: none, invasive (tests), expensive "
        "(tests priced at expensive_over or more), diagnosis (the final one), all."
    )
    expensive_over: float = Field(500.0, ge=0, description="USD from which a test counts as expensive.")

    @field_validator("budget", mode="before")
    @classmethod
    def _none_means_unset(cls, value: object) -> object:
        # An environment variable cannot be null: "none" or an empty value means no budget.
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value


def _default_config_file() -> Path:
    return Path(platformdirs.user_config_dir("clinicflow")) / "config.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLINICFLOW_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    models: RoleModels = Field(default_factory=RoleModels)
    max_turns: int = Field(20, ge=1, le=200, description="Doctor turns; the last one forces a diagnosis.")
    measurement_mode: Literal["strict", "agentclinic"] = "strict"
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    seed: int | None = None
    max_new_tokens: int | None = Field(
        None, ge=16, description="Cap on the doctor's reply; unset: 96 on the embedded model, 1024 elsewhere."
    )
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout for OpenAI-compatible servers.")
    max_retries: int = Field(3, ge=0)
    # Sent as a bearer token to OpenAI-compatible servers; never written to logs or transcripts.
    openai_api_key: SecretStr | None = None
    checkpointer: str | None = Field(
        None, description="Where consultation checkpoints live: redis://HOST:PORT/DB (rediss:// for TLS; shared by "
        "every process and machine that uses it) or a SQLite file; unset: checkpoints.sqlite in the data dir."
    )
    checkpoint_ttl_minutes: float | None = Field(
        None, gt=0, description="Redis only: checkpoints expire this long after their last read or write; unset: "
        "kept until deleted."
    )
    fhir: FhirSettings = Field(default_factory=FhirSettings)
    bench: BenchSettings = Field(default_factory=BenchSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    panel: PanelSettings = Field(default_factory=PanelSettings)
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("clinicflow")))
    cache_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_cache_dir("clinicflow")))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("CLINICFLOW_CONFIG", _default_config_file()))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def checkpoint_db(self) -> Path:
        """The default SQLite file for consultation checkpoints (used when ``checkpointer`` is unset)."""
        return self.data_dir / "checkpoints.sqlite"

    @property
    def checkpoint_target(self) -> str | Path:
        """Where checkpoints go: the ``checkpointer`` setting (a Redis URL or a SQLite path), else the default file."""
        return self.checkpointer or self.checkpoint_db

    @property
    def fhir_server_dir(self) -> Path:
        """Where ``clinicflow fhir serve`` keeps its store and announces the running server."""
        return self.data_dir / "fhir-server"

    @property
    def call_cache_file(self) -> str | Path:
        """The benchmark's model-call cache: a SQLite file path (a Path when it is the default) or a Redis URL."""
        return self.bench.cache_file or self.cache_dir / "model-calls.sqlite"

    @property
    def model_cache_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def image_cache_dir(self) -> Path:
        """Where fetched images are kept, by digest: the ``images.cache_dir`` setting, else ``<cache dir>/images``."""
        return self.images.cache_dir or self.cache_dir / "images"
