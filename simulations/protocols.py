"""The two consultation protocols, as the doctor and environment each one plays.

- ``clinicflow``: our doctor (one structured JSON decision per turn over an append-only message list), our patient
  (diagnosis redacted) and our measurement actor (``strict`` by default: unlisted tests are "not available").
- ``agentclinic``: upstream AgentClinic reproduced (tag protocol, flattened history, NORMAL READINGS for unlisted
  tests in its default measurement mode), so its published numbers can be checked with the same models.

Bias names are AgentClinic's (12 doctor, 11 patient); each protocol phrases them in its own prompts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel

from agents.doctor import Doctor
from agents.doctor.agentclinic import AgentClinicDoctor, agentclinic_doctor_biases
from graphs.environment import Environment
from simulations.agentclinic import agentclinic_patient_biases, build_agentclinic_clinic
from simulations.cases import Case
from simulations.clinic import build_simulated_clinic

Protocol = Literal["clinicflow", "agentclinic"]
PROTOCOLS: tuple[str, ...] = ("clinicflow", "agentclinic")
DEFAULT_MEASUREMENT_MODE: dict[str, str] = {"clinicflow": "strict", "agentclinic": "agentclinic"}
# Upstream caps every reply at 200 tokens.
AGENTCLINIC_MAX_NEW_TOKENS = 200


def doctor_bias_names() -> list[str]:
    return sorted(agentclinic_doctor_biases())


def patient_bias_names() -> list[str]:
    return sorted(agentclinic_patient_biases())


def check_protocol(protocol: str) -> Protocol:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    return protocol  # type: ignore[return-value]


def build_doctor(protocol: str, model: BaseChatModel, *, bias: str | None = None, max_new_tokens: int = 384) -> Any:
    """The doctor role of ``protocol``; both answer ``decide(...)`` with a ``DoctorTurn``."""
    if check_protocol(protocol) == "agentclinic":
        return AgentClinicDoctor(model, bias=bias, max_new_tokens=AGENTCLINIC_MAX_NEW_TOKENS)
    note = None
    if bias is not None:
        biases = agentclinic_doctor_biases()
        if bias not in biases:
            raise ValueError(f"unknown doctor bias {bias!r}; choose one of: {', '.join(sorted(biases))}")
        note = biases[bias]
    return Doctor(model, max_new_tokens=max_new_tokens, system_note=note)


def build_environment(
    protocol: str,
    case: Case,
    models: Mapping[str, BaseChatModel],
    *,
    measurement_mode: str,
    patient_bias: str | None = None,
) -> Environment:
    """The simulated clinic of ``protocol`` for one case: patient and measurement actors on their role models."""
    if check_protocol(protocol) == "agentclinic":
        return build_agentclinic_clinic(
            case, patient_model=models["patient"], measurement_model=models.get("measurement"),
            mode=measurement_mode, patient_bias=patient_bias,
        )
    return build_simulated_clinic(
        case, patient_model=models["patient"], measurement_model=models.get("measurement"),
        mode=measurement_mode, bias=patient_bias,  # type: ignore[arg-type]
    )
