"""The simulated clinic: a patient and a measurement actor over one case, behind the graph's ``Environment``.

The actors are ours (``PatientActor``, ``MeasurementActor``) or upstream AgentClinic's reproduced ones
(``simulations.agentclinic``); the clinic only routes questions and test orders and watches for leaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from langchain_core.language_models import BaseChatModel

from graphs.environment import Observation
from graphs.state import DialogueEntry
from simulations.cases import Case
from simulations.leaks import leaks_diagnosis
from simulations.llm import Usage
from simulations.measurement import MeasurementActor, MeasurementMode, TestReply
from simulations.patient import PatientActor, PatientReply


class PatientRole(Protocol):
    case: Case

    async def answer(self, question: str, dialogue: Sequence[DialogueEntry] = ()) -> PatientReply: ...


class MeasurementRole(Protocol):
    case: Case

    @property
    def mode(self) -> str: ...

    async def answer(self, request: str, dialogue: Sequence[DialogueEntry] = ()) -> TestReply: ...


class SimulatedClinic:
    """Answers the doctor with a simulated patient (questions) and measurement actor (test orders).

    ``leaks`` lists the sources of revealed results that contained the correct diagnosis, in the order seen;
    ``protocol`` prefixes the mode transcripts record (``simulated/strict``, ``agentclinic/agentclinic``).
    """

    def __init__(
        self, case: Case, patient: PatientRole, measurement: MeasurementRole, *, protocol: str = "simulated"
    ) -> None:
        for role, actor in (("patient", patient), ("measurement", measurement)):
            if actor.case.id != case.id:
                raise ValueError(f"the {role} actor plays case {actor.case.id!r}, not {case.id!r}")
        self.case = case
        self.patient = patient
        self.measurement = measurement
        self.protocol = protocol
        self.leaks: list[str] = []

    @property
    def mode(self) -> str:
        return f"{self.protocol}/{self.measurement.mode}"

    def opening(self) -> str:
        # Only the objective: anything more (history, exam) is for the doctor to ask for.
        return self.case.objective

    async def respond(
        self,
        action: Literal["ask", "test"],
        text: str,
        dialogue: Sequence[DialogueEntry],
    ) -> Observation:
        if action == "ask":
            reply = await self.patient.answer(text, dialogue)
            return _observation(reply.text, "patient", "patient", True, reply.usage)
        if action == "test":
            result = await self.measurement.answer(text, dialogue)
            source = "test:" + ("; ".join(result.names) or text.strip())
            if leaks_diagnosis(self.case, result.text) and source not in self.leaks:
                self.leaks.append(source)
            return _observation(result.text, "measurement", source, result.available, result.usage)
        raise ValueError(f"the simulated clinic answers 'ask' or 'test', not {action!r}")


def _observation(
    text: str, speaker: Literal["patient", "measurement"], source: str, available: bool, usage: Usage
) -> Observation:
    return Observation(
        text=text, speaker=speaker, source=source, available=available, model=usage.model,
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, seconds=usage.seconds, calls=usage.calls,
    )


def build_simulated_clinic(
    case: Case,
    *,
    patient_model: BaseChatModel,
    measurement_model: BaseChatModel | None,
    mode: MeasurementMode = "strict",
    bias: str | None = None,
) -> SimulatedClinic:
    """A clinic for ``case`` with both actors built from their role models."""
    return SimulatedClinic(
        case,
        PatientActor(patient_model, case, bias),
        MeasurementActor(measurement_model, case, mode),
    )
