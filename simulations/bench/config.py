"""A run's configuration: what ``config.json`` holds, and the check that refuses to mix two configurations in one
run directory.

``RunConfig`` holds everything that changes results (protocol, cases, models, rules, seed); ``RunEnvironment``
holds what was true when the run started (package versions, concurrency, the command) and is recorded but never
compared, so resuming with a different ``--concurrency`` or on an upgraded machine is allowed.
"""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulations.bench.records import NO_BIAS, SINGLE_ARM, Protocol

CONFIG_SCHEMA_VERSION = 1
RECORDED_PACKAGES = (
    "clinicflow", "langgraph", "langchain-core", "transformers", "torch", "httpx", "pydantic", "fhir.resources",
)


class ConfigMismatchError(Exception):
    """The run directory holds a run with a different configuration; ``differences`` lists (field, old, new)."""

    def __init__(self, run_dir: str, differences: list[tuple[str, Any, Any]]) -> None:
        lines = "\n".join(f"  {name}: {old!r} -> {new!r}" for name, old, new in differences)
        super().__init__(
            f"{run_dir} holds a run with a different configuration:\n{lines}\n"
            "Use another --run-dir, or --force-new to start this directory over (its old results are moved aside)."
        )
        self.run_dir = run_dir
        self.differences = differences


class DatasetRef(BaseModel):
    """One case file of the run (``path`` None for the built-in demo cases), pinned by its content hash."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: str | None = None
    sha256: str | None = None
    cases: int = 0


class RunConfig(BaseModel):
    """Everything that determines a run's results; two runs with equal configs are the same experiment."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = CONFIG_SCHEMA_VERSION
    protocol: Protocol
    datasets: list[DatasetRef]
    case_ids: list[str]  # the selected cases, in run order
    biases: list[str] = Field(default_factory=lambda: [NO_BIAS])  # "none", "doctor:<name>", "patient:<name>"
    repeats: int = Field(1, ge=1)
    models: dict[str, str]  # role -> spec (never credentials); "imaging" and "triage" when images are read
    measurement_mode: str
    max_turns: int = Field(20, ge=1)
    seed: int = 0
    temperature: float = 0.0
    max_new_tokens: dict[str, int] = Field(default_factory=dict)  # per role
    rubric: bool = True  # the second (5-point) judge; the clinicflow protocol's default
    # When a case's image is read: "start" (at intake, into the doctor's opening context) or "request" (when the
    # doctor asks), AgentClinic-NEJM's two settings.
    image_setting: Literal["start", "request"] = "request"
    # The doctors compared (simulations.arms labels: "single", "panel", "panel:<variant>"); the budget (USD) of the
    # budgeted panel arm; the panels of the ensemble arm and how their differentials are combined. Defaults are what
    # every run before arms existed did, so such a run's config still compares equal and resumes.
    arms: list[str] = Field(default_factory=lambda: [SINGLE_ARM])
    budget: float | None = None
    ensemble_members: int = Field(3, ge=1)
    ensemble_aggregate: Literal["mean", "majority"] = "mean"

    # What a run's identity (its default directory's hash) leaves out while at its default, so the same command
    # finds the same directory it did before these fields existed.
    ARM_DEFAULTS: ClassVar[dict[str, Any]] = {"arms": [SINGLE_ARM], "budget": None, "ensemble_members": 3,
                                              "ensemble_aggregate": "mean"}

    def identity_json(self) -> str:
        """The config as JSON for hashing, leaving out the arm fields while they hold their defaults."""
        dumped = self.model_dump(mode="json")
        left_out = {name for name, default in self.ARM_DEFAULTS.items() if dumped[name] == default}
        return self.model_dump_json(exclude=left_out)

    def differences(self, other: RunConfig) -> list[tuple[str, Any, Any]]:
        """The fields whose values differ, as (field, this value, other value)."""
        mine, theirs = self.model_dump(mode="json"), other.model_dump(mode="json")
        return [(name, mine[name], theirs.get(name)) for name in mine if mine[name] != theirs.get(name)]


class RunEnvironment(BaseModel):
    """Recorded beside the config, never compared: where and how the run was started (and last resumed)."""

    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    python: str = Field(default_factory=lambda: sys.version.split()[0])
    platform: str = Field(default_factory=platform.platform)
    packages: dict[str, str] = Field(default_factory=lambda: package_versions())
    command: list[str] = Field(default_factory=lambda: list(sys.argv))
    concurrency: int | None = None
    max_connections: int | None = None
    cache: str | None = None  # the model-call cache file, when one was used
    # Where case images were looked for (--image-dir) and cached; the digests in the transcripts pin the bytes.
    image_dir: str | None = None
    image_cache: str | None = None


def package_versions(names: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
