"""The ``agentclinic`` protocol's clinic: upstream AgentClinic's patient, measurement reader and moderator.

Reproduced on purpose, flaws included, so that upstream numbers can be reproduced with the same models:

- every actor gets a system prompt and ONE user string that flattens its whole history (upstream flaw 4); the
  framing words are ours, the structure upstream's;
- the patient sees its script as upstream formats it (MedQA: the ``Patient_Actor`` dict's ``str()``) and its
  answers are not redacted;
- in mode ``agentclinic`` every test request goes to the model, which is told to answer NORMAL READINGS for
  anything not in its data (flaw 1). Mode ``strict`` hands requests to ``MeasurementActor(..., "strict")``
  instead (listed tests verbatim, unlisted "not available"), to ablate that flaw inside the faithful protocol;
- the moderator is asked Yes or No; its answer is read with ``parse_verdict`` (flaw 3 fixed), and what upstream's
  exact lower-case "yes" rule would have said is recorded beside it.

The actors keep no state: upstream's per-agent histories, including the cross-feeding (a test result is added to
the patient's history and a patient answer to the measurement reader's), are rebuilt from the graph's dialogue on
every call, so a consultation resumed from a checkpoint sends the same prompts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict

from agents.doctor.agentclinic import (
    AGENTCLINIC_MAX_NEW_TOKENS,
    bias_sentence,
    collapse,
    has_diagnosis_tag,
    requested_test,
)
from graphs.state import DialogueEntry
from simulations.cases import Case
from simulations.clinic import SimulatedClinic
from simulations.judge import Verdict, parse_verdict
from simulations.llm import generate
from simulations.measurement import NORMAL_READINGS, MeasurementActor, MeasurementMode, TestPart, TestReply
from simulations.patient import FALLBACK_ANSWER, PatientReply
from simulations.prompts import load_prompt

MODERATOR_MAX_NEW_TOKENS = 16

# User-message framing (our words, upstream's structure and spacing).
PATIENT_HISTORY_OPEN = "\nThe dialogue so far: "
PATIENT_QUESTION_OPEN = "\n What the doctor just said: "
PATIENT_CONTINUE = "Now carry on with the dialogue.\nPatient: "
MEASUREMENT_HISTORY_OPEN = "\nThe dialogue so far: "
MEASUREMENT_REQUEST_OPEN = "\n The doctor's test request: "
MODERATOR_CORRECT_OPEN = "\nThe correct diagnosis: "
MODERATOR_DOCTOR_OPEN = "\n What the doctor said: "
MODERATOR_QUESTION = "\nDo these name the same disease?"


@cache
def _load_biases() -> tuple[tuple[str, str], ...]:
    lines = load_prompt("agentclinic_patient_biases").splitlines()
    return tuple((name.strip(), text.strip()) for name, _, text in (line.partition("=") for line in lines if "=" in line))


def agentclinic_patient_biases() -> dict[str, str]:
    """Bias name -> the sentence inserted into the patient's system prompt (upstream's 11 patient biases)."""
    return dict(_load_biases())


def _answered(dialogue: Sequence[DialogueEntry]) -> Iterator[tuple[DialogueEntry, DialogueEntry]]:
    """(doctor entry, the entry answering it) in order; a doctor entry still awaiting its answer is left out, so the
    question being answered now is never in its own history."""
    asked: DialogueEntry | None = None
    for entry in dialogue:
        if entry["role"] == "doctor":
            asked = entry
        elif asked is not None:
            yield asked, entry
            asked = None


def patient_history(dialogue: Sequence[DialogueEntry]) -> str:
    """Upstream's patient history: each question with its answer, and each test result (its ``add_hist``)."""
    parts: list[str] = []
    for doctor, answer in _answered(dialogue):
        if answer["role"] == "patient":
            parts.append(f"{doctor['text']}\n\n{answer['text']}\n\n")
        elif answer["role"] == "measurement":
            parts.append(f"{answer['text']}\n\n")
    return "".join(parts)


def measurement_history(dialogue: Sequence[DialogueEntry]) -> str:
    """Upstream's measurement history: each request with its result, and each patient answer (its ``add_hist``)."""
    parts: list[str] = []
    for doctor, answer in _answered(dialogue):
        if answer["role"] == "measurement":
            parts.append(f"{doctor['text']}\n\n{answer['text']}\n\n")
        elif answer["role"] == "patient":
            parts.append(f"{answer['text']}\n\n")
    return "".join(parts)


def patient_script(case: Case) -> str:
    """The patient's information as upstream formats it: MedQA's ``Patient_Actor`` dict as ``str()``, NEJM's text."""
    osce = case.raw.get("OSCE_Examination")
    if isinstance(osce, dict) and "Patient_Actor" in osce:
        return str(osce["Patient_Actor"])
    if "patient_info" in case.raw:
        return str(case.raw["patient_info"])
    return case.patient_info


def exam_script(case: Case) -> str:
    """The measurement data as upstream formats it: the exam dict (tests merged under "tests") as ``str()``."""
    return case.findings if isinstance(case.findings, str) else str(case.findings)


class AgentClinicPatient:
    """Upstream's patient. ``bias`` names one of ``agentclinic_patient_biases()``, or None."""

    def __init__(
        self,
        model: BaseChatModel,
        case: Case,
        bias: str | None = None,
        *,
        max_new_tokens: int = AGENTCLINIC_MAX_NEW_TOKENS,
    ) -> None:
        self._bias = bias_sentence(bias, agentclinic_patient_biases(), "patient")
        self.model = model
        self.case = case
        self.bias = bias
        self.max_new_tokens = max_new_tokens

    def system_prompt(self) -> str:
        bias = f"\n{self._bias}" if self._bias else ""
        return load_prompt("agentclinic_patient").format(bias=bias, info=patient_script(self.case))

    def messages(self, question: str, dialogue: Sequence[DialogueEntry] = ()) -> list[BaseMessage]:
        text = f"{PATIENT_HISTORY_OPEN}{patient_history(dialogue)}{PATIENT_QUESTION_OPEN}{question}{PATIENT_CONTINUE}"
        return [SystemMessage(self.system_prompt()), HumanMessage(text)]

    async def answer(self, question: str, dialogue: Sequence[DialogueEntry] = ()) -> PatientReply:
        raw, usage = await generate(self.model, self.messages(question, dialogue), max_new_tokens=self.max_new_tokens)
        text = collapse(raw)
        return PatientReply(text=text or FALLBACK_ANSWER, usage=usage, redactions=0, fallback=not text)


class AgentClinicMeasurement:
    """Upstream's measurement reader (mode ``agentclinic``) or our strict gatekeeper (mode ``strict``)."""

    def __init__(
        self,
        model: BaseChatModel | None,
        case: Case,
        mode: MeasurementMode = "agentclinic",
        *,
        max_new_tokens: int = AGENTCLINIC_MAX_NEW_TOKENS,
    ) -> None:
        if mode not in ("strict", "agentclinic"):
            raise ValueError(f"unknown measurement mode {mode!r}; choose 'strict' or 'agentclinic'")
        if mode == "agentclinic" and model is None:
            raise ValueError("agentclinic mode needs a chat model: every test request is answered by it")
        self.model = model
        self.case = case
        self._mode: MeasurementMode = mode
        self.max_new_tokens = max_new_tokens
        self._strict = MeasurementActor(model, case, "strict") if mode == "strict" else None

    @property
    def mode(self) -> MeasurementMode:
        return self._mode

    def system_prompt(self) -> str:
        return load_prompt("agentclinic_measurement").format(exam=exam_script(self.case))

    def messages(self, request: str, dialogue: Sequence[DialogueEntry] = ()) -> list[BaseMessage]:
        text = f"{MEASUREMENT_HISTORY_OPEN}{measurement_history(dialogue)}{MEASUREMENT_REQUEST_OPEN}{request}"
        return [SystemMessage(self.system_prompt()), HumanMessage(text)]

    async def answer(self, request: str, dialogue: Sequence[DialogueEntry] = ()) -> TestReply:
        if self._strict is not None:
            # The deterministic matcher wants the test's name, not the doctor's whole sentence around the tag.
            return await self._strict.answer(requested_test(request))
        assert self.model is not None  # guaranteed by __init__ for agentclinic mode
        raw, usage = await generate(self.model, self.messages(request, dialogue), max_new_tokens=self.max_new_tokens)
        text = collapse(raw)
        # An empty answer becomes what the reader is told to say for missing data, marked as a fallback.
        part = TestPart(requested_test(request), None, "model" if text else "fallback")
        return TestReply(text or f"RESULTS: {NORMAL_READINGS}", [part], available=True, usage=usage)


class AgentClinicClinic(SimulatedClinic):
    """The simulated clinic with upstream's patient and measurement reader (mode ``agentclinic/<measurement>``)."""

    def __init__(self, case: Case, patient: AgentClinicPatient, measurement: AgentClinicMeasurement) -> None:
        super().__init__(case, patient, measurement, protocol="agentclinic")


class ModeratorVerdict(BaseModel):
    """The moderator's verdict read robustly, and what upstream's exact lower-case "yes" rule would have said."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    upstream_correct: bool


class AgentClinicModerator:
    """Upstream's moderator: is the doctor's final message the same disease as the correct diagnosis?"""

    def __init__(self, model: BaseChatModel, *, max_new_tokens: int = MODERATOR_MAX_NEW_TOKENS) -> None:
        self.model = model
        self.max_new_tokens = max_new_tokens

    def messages(self, correct_diagnosis: str, doctor_message: str) -> list[BaseMessage]:
        text = f"{MODERATOR_CORRECT_OPEN}{correct_diagnosis}{MODERATOR_DOCTOR_OPEN}{doctor_message}{MODERATOR_QUESTION}"
        return [SystemMessage(load_prompt("agentclinic_moderator")), HumanMessage(text)]

    async def verdict(self, correct_diagnosis: str, doctor_message: str) -> ModeratorVerdict:
        """``doctor_message`` is the doctor's whole final reply; without ``DIAGNOSIS READY`` there is no diagnosis
        to judge and no model call."""
        if not has_diagnosis_tag(doctor_message):
            return ModeratorVerdict(verdict=Verdict(correct=False, raw="", method="no_diagnosis"), upstream_correct=False)
        messages = self.messages(correct_diagnosis, doctor_message)
        raw, usage = await generate(self.model, messages, max_new_tokens=self.max_new_tokens)
        decided = parse_verdict(raw)
        verdict = Verdict(
            correct=decided, raw=raw, method="model" if decided is not None else "unjudged", model=usage.model,
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, seconds=usage.seconds,
            calls=usage.calls,
        )
        # Upstream compared the whitespace-collapsed answer, lower-cased, with "yes": "Yes." fails.
        return ModeratorVerdict(verdict=verdict, upstream_correct=collapse(raw).lower() == "yes")


def build_agentclinic_clinic(
    case: Case,
    *,
    patient_model: BaseChatModel,
    measurement_model: BaseChatModel | None,
    mode: MeasurementMode = "agentclinic",
    patient_bias: str | None = None,
) -> AgentClinicClinic:
    """A clinic for ``case`` under the agentclinic protocol, both actors built from their role models."""
    return AgentClinicClinic(
        case, AgentClinicPatient(patient_model, case, patient_bias), AgentClinicMeasurement(measurement_model, case, mode)
    )
