"""A benchmark plan: the run's configuration and its attempts (every case under every bias condition, repeated).

Attempts are ordered repeat by repeat, so a run stopped half-way has whole passes over the cases rather than many
repeats of the first few.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from simulations.bench.config import DatasetRef, RunConfig
from simulations.bench.records import NO_BIAS, attempt_key, parse_bias, transcript_name
from simulations.case_images import IMAGE_SETTINGS
from simulations.cases import Case
from simulations.protocols import DEFAULT_MEASUREMENT_MODE, check_protocol, doctor_bias_names, patient_bias_names

REQUIRED_ROLES: tuple[str, ...] = ("reasoning", "patient", "judge")
DEFAULT_DOCTOR_TOKENS = 384


@dataclass(frozen=True)
class Attempt:
    """One case under one bias condition, repetition ``repeat`` (0-based)."""

    case: Case
    bias: str
    repeat: int

    @property
    def key(self) -> str:
        return attempt_key(self.case.id, self.bias, self.repeat)

    @property
    def name(self) -> str:
        return transcript_name(self.case.id, self.bias, self.repeat)


@dataclass(frozen=True)
class BenchPlan:
    config: RunConfig
    cases: list[Case]

    def attempts(self) -> list[Attempt]:
        return [
            Attempt(case, bias, repeat)
            for repeat in range(self.config.repeats)
            for bias in self.config.biases
            for case in self.cases
        ]


def check_bias(condition: str) -> str:
    """Validate a bias condition (``none``, ``doctor:<name>``, ``patient:<name>``) against AgentClinic's names."""
    doctor, patient = parse_bias(condition)
    if doctor is not None and doctor not in doctor_bias_names():
        raise ValueError(f"unknown doctor bias {doctor!r}; choose one of: {', '.join(doctor_bias_names())}")
    if patient is not None and patient not in patient_bias_names():
        raise ValueError(f"unknown patient bias {patient!r}; choose one of: {', '.join(patient_bias_names())}")
    return condition


def make_plan(
    cases: Sequence[Case],
    *,
    protocol: str,
    models: Mapping[str, str],
    measurement_mode: str | None = None,
    max_turns: int = 20,
    seed: int = 0,
    temperature: float = 0.0,
    repeats: int = 1,
    biases: Iterable[str] = (NO_BIAS,),
    rubric: bool | None = None,
    datasets: Sequence[DatasetRef] | None = None,
    max_new_tokens: Mapping[str, int] | None = None,
    image_setting: str = "request",
) -> BenchPlan:
    """Check the choices and build the plan; ``None`` picks the protocol's default (measurement mode, rubric)."""
    if image_setting not in IMAGE_SETTINGS:
        raise ValueError(f"unknown image setting {image_setting!r}; choose one of: {', '.join(IMAGE_SETTINGS)}")
    protocol = check_protocol(protocol)
    if not cases:
        raise ValueError("no cases selected")
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise ValueError("the selection names a case twice: " + ", ".join(sorted({i for i in ids if ids.count(i) > 1})))
    missing = [role for role in REQUIRED_ROLES if not models.get(role)]
    mode = measurement_mode or DEFAULT_MEASUREMENT_MODE[protocol]
    if mode not in ("strict", "agentclinic"):
        raise ValueError(f"unknown measurement mode {mode!r}; choose 'strict' or 'agentclinic'")
    if mode == "agentclinic" and not models.get("measurement"):
        missing.append("measurement")
    if missing:
        raise ValueError(f"no model spec for role(s): {', '.join(missing)}")
    conditions = list(dict.fromkeys(check_bias(b.strip()) for b in biases if b.strip())) or [NO_BIAS]
    if datasets is None:
        names = list(dict.fromkeys(c.dataset for c in cases))
        datasets = [DatasetRef(name=n, cases=sum(c.dataset == n for c in cases)) for n in names]
    tokens = {"reasoning": DEFAULT_DOCTOR_TOKENS, **(dict(max_new_tokens or {}))}
    config = RunConfig(
        protocol=protocol,
        datasets=list(datasets),
        case_ids=ids,
        biases=conditions,
        repeats=repeats,
        models={role: spec for role, spec in models.items() if spec},
        measurement_mode=mode,
        max_turns=max_turns,
        seed=seed,
        temperature=temperature,
        max_new_tokens=tokens,
        rubric=(protocol == "clinicflow") if rubric is None else rubric,
        image_setting=image_setting,  # type: ignore[arg-type]
    )
    return BenchPlan(config=config, cases=list(cases))
