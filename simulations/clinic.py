"""The simulated clinic: AgentClinic-style actors over one case, behind the graph's ``Environment`` interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from langchain_core.language_models import BaseChatModel

from graphs.environment import Observation
from graphs.state import DialogueEntry
from simulations.cases import Case
from simulations.leaks import leaks_diagnosis
from simulations.measurement import MeasurementActor, MeasurementMode
from simulations.patient import PatientActor


class SimulatedClinic:
    """Answers the doctor with a simulated patient (questions) and measurement actor (test orders).

    ``leaks`` lists the sources of revealed results that contained the correct diagnosis, in the order seen.
    """

    def __init__(self, case: Case, patient: PatientActor, measurement: MeasurementActor) -> None:
        for role, actor in (("patient", patient), ("measurement", measurement)):
            if actor.case.id != case.id:
                raise ValueError(f"the {role} actor plays case {actor.case.id!r}, not {case.id!r}")
        self.case = case
        self.patient = patient
        self.measurement = measurement
        self.leaks: list[str] = []

    @property
    def mode(self) -> str:
        return f"simulated/{self.measurement.mode}"

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
            return Observation(
                text=reply.text,
                speaker="patient",
                source="patient",
                model=reply.usage.model,
                input_tokens=reply.usage.input_tokens,
                output_tokens=reply.usage.output_tokens,
                seconds=reply.usage.seconds,
                calls=reply.usage.calls,
            )
        if action == "test":
            result = await self.measurement.answer(text)
            source = "test:" + ("; ".join(result.names) or text.strip())
            if leaks_diagnosis(self.case, result.text) and source not in self.leaks:
                self.leaks.append(source)
            return Observation(
                text=result.text,
                speaker="measurement",
                source=source,
                available=result.available,
                model=result.usage.model,
                input_tokens=result.usage.input_tokens,
                output_tokens=result.usage.output_tokens,
                seconds=result.usage.seconds,
                calls=result.usage.calls,
            )
        raise ValueError(f"the simulated clinic answers 'ask' or 'test', not {action!r}")


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
