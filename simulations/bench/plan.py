"""A benchmark plan: the run's configuration and its attempts (every case under every bias condition in every arm,
repeated).

Attempts are ordered repeat by repeat, so a run stopped half-way has whole passes over the cases rather than many
repeats of the first few; within a repeat, bias by bias and arm by arm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agents.panel.policy import AGGREGATES
from simulations.arms import DEFAULT_MEMBERS, arm_policy, check_arm, check_arm_options, split_arm
from simulations.bench.config import DatasetRef, RunConfig
from simulations.bench.records import NO_BIAS, SINGLE_ARM, attempt_key, parse_bias, transcript_name
from simulations.case_images import IMAGE_SETTINGS
from simulations.cases import Case
from simulations.protocols import DEFAULT_MEASUREMENT_MODE, check_protocol, doctor_bias_names, patient_bias_names

REQUIRED_ROLES: tuple[str, ...] = ("reasoning", "patient", "judge")
DEFAULT_DOCTOR_TOKENS = 384


@dataclass(frozen=True)
class Attempt:
    """One case under one bias condition in one arm, repetition ``repeat`` (0-based)."""

    case: Case
    bias: str
    repeat: int
    arm: str = SINGLE_ARM

    @property
    def key(self) -> str:
        return attempt_key(self.case.id, self.bias, self.repeat, self.arm)

    @property
    def name(self) -> str:
        return transcript_name(self.case.id, self.bias, self.repeat, self.arm)


@dataclass(frozen=True)
class BenchPlan:
    config: RunConfig
    cases: list[Case]

    def attempts(self) -> list[Attempt]:
        return [
            Attempt(case, bias, repeat, arm)
            for repeat in range(self.config.repeats)
            for bias in self.config.biases
            for arm in self.config.arms
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


def check_arms(arms: Iterable[str], biases: Sequence[str], *, budget: float | None, members: int,
               aggregate: str) -> list[str]:
    """The run's arms as canonical labels, each once; every panel arm's policy is built once here so a bad budget,
    ensemble size or aggregation fails before anything runs (ValueError saying which)."""
    labels = list(dict.fromkeys(check_arm(a) for a in arms if a.strip())) or [SINGLE_ARM]
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown ensemble aggregation {aggregate!r}; choose one of: {', '.join(AGGREGATES)}")
    check_arm_options(labels, budget)
    for arm in labels:
        arm_policy(arm, budget=budget, members=members, aggregate=aggregate)
    panels = [arm for arm in labels if split_arm(arm)[0] != SINGLE_ARM]
    doctor_biases = [b for b in biases if parse_bias(b)[0] is not None]
    if panels and doctor_biases:
        raise ValueError(f"doctor biases ({', '.join(doctor_biases)}) apply to the single doctor only; run the panel "
                         f"arms ({', '.join(panels)}) without them")
    return labels


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
    arms: Iterable[str] = (SINGLE_ARM,),
    budget: float | None = None,
    ensemble_members: int = DEFAULT_MEMBERS,
    ensemble_aggregate: str = "mean",
) -> BenchPlan:
    """Check the choices and build the plan; ``None`` picks the protocol's default (measurement mode, rubric).

    ``arms`` are simulations.arms labels; ``budget`` goes with (and only with) the budgeted panel arm;
    ``ensemble_members`` and ``ensemble_aggregate`` shape the ensemble arm.
    """
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
    arm_list = check_arms(arms, conditions, budget=budget, members=ensemble_members, aggregate=ensemble_aggregate)
    if not any(split_arm(arm)[1] == "ensemble" for arm in arm_list):
        # Without an ensemble arm its options change nothing, so they must not make the config differ either.
        ensemble_members, ensemble_aggregate = DEFAULT_MEMBERS, "mean"
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
        arms=arm_list,
        budget=budget,
        ensemble_members=ensemble_members,
        ensemble_aggregate=ensemble_aggregate,  # type: ignore[arg-type]
    )
    return BenchPlan(config=config, cases=list(cases))
