"""The simulated clinic and its cases: AgentClinic-style patient, measurement and judge actors over case files.

Implements ``graphs.environment.Environment`` (``SimulatedClinic``); nothing here builds a model at import time:
every actor receives its chat model.
"""

from simulations.agentclinic import (
    AgentClinicClinic,
    AgentClinicMeasurement,
    AgentClinicModerator,
    AgentClinicPatient,
    ModeratorVerdict,
    agentclinic_patient_biases,
    build_agentclinic_clinic,
)
from simulations.case_images import (
    IMAGE_SETTINGS,
    IMAGE_STATUSES,
    CaseImages,
    ImageSetting,
    ImageStatus,
    image_status,
    local_image_for,
    prepare_case_images,
)
from simulations.cases import (
    Case,
    CaseError,
    CaseFormatError,
    CaseLoad,
    CaseNotFoundError,
    CaseProblem,
    demo_cases,
    get_demo_case,
    load_case,
    load_cases,
)
from simulations.clinic import SimulatedClinic, build_simulated_clinic
from simulations.findings import NamedTest, TestMatch, flatten_findings, match_test
from simulations.judge import Judge, Verdict, exact_match, parse_verdict
from simulations.leaks import leaking_findings, leaks_diagnosis, redact_diagnosis
from simulations.llm import Usage
from simulations.measurement import MeasurementActor, MeasurementMode, TestPart, TestReply
from simulations.patient import PatientActor, PatientReply, patient_biases
from simulations.rubric import RUBRIC_CRITERIA, RUBRIC_PASS, RubricJudge, RubricResult, parse_rubric

__all__ = [
    "IMAGE_SETTINGS",
    "IMAGE_STATUSES",
    "RUBRIC_CRITERIA",
    "RUBRIC_PASS",
    "AgentClinicClinic",
    "AgentClinicMeasurement",
    "AgentClinicModerator",
    "AgentClinicPatient",
    "Case",
    "CaseError",
    "CaseFormatError",
    "CaseImages",
    "CaseLoad",
    "CaseNotFoundError",
    "CaseProblem",
    "ImageSetting",
    "ImageStatus",
    "Judge",
    "MeasurementActor",
    "MeasurementMode",
    "ModeratorVerdict",
    "NamedTest",
    "PatientActor",
    "PatientReply",
    "RubricJudge",
    "RubricResult",
    "SimulatedClinic",
    "TestMatch",
    "TestPart",
    "TestReply",
    "Usage",
    "Verdict",
    "agentclinic_patient_biases",
    "build_agentclinic_clinic",
    "build_simulated_clinic",
    "demo_cases",
    "exact_match",
    "flatten_findings",
    "get_demo_case",
    "image_status",
    "leaking_findings",
    "leaks_diagnosis",
    "load_case",
    "load_cases",
    "local_image_for",
    "match_test",
    "parse_rubric",
    "parse_verdict",
    "patient_biases",
    "prepare_case_images",
    "redact_diagnosis",
]
