"""The simulated clinic behind the graph's Environment interface, with fake role models."""

from __future__ import annotations

import pytest

from graphs.environment import Environment, Observation
from simulations.cases import get_demo_case
from simulations.clinic import SimulatedClinic, build_simulated_clinic
from simulations.leaks import leaks_diagnosis, redact_diagnosis
from simulations.measurement import MeasurementActor
from simulations.patient import PatientActor


def test_conforms_to_the_environment_protocol(gout_case, scripted):
    for mode in ("strict", "agentclinic"):
        clinic = build_simulated_clinic(gout_case, patient_model=scripted(), measurement_model=scripted(), mode=mode)
        assert isinstance(clinic, Environment)
        assert clinic.mode == f"simulated/{mode}"


def test_opening_is_only_the_objective(scripted):
    case = get_demo_case("demo:chest-pain")
    clinic = build_simulated_clinic(case, patient_model=scripted(), measurement_model=None)
    assert clinic.opening() == "Evaluate and diagnose the patient presenting with chest pain."
    assert not leaks_diagnosis(case, clinic.opening())


async def test_asks_go_to_the_patient(scripted):
    case = get_demo_case("chest-pain")
    patient_model = scripted("It feels like an elephant on my chest.")
    clinic = build_simulated_clinic(case, patient_model=patient_model, measurement_model=None)
    question = "Can you describe the pain?"
    dialogue = [{"turn": 1, "role": "doctor", "text": question, "action": "ask"}]
    observation = await clinic.respond("ask", question, dialogue)
    assert observation == Observation(
        text="It feels like an elephant on my chest.", speaker="patient", source="patient", available=True,
        model="scripted:test", input_tokens=101, output_tokens=7, seconds=0.25, calls=1,
    )
    assert "58-year-old man" in patient_model.seen[0][0].content


async def test_tests_go_to_the_measurement_actor(scripted):
    case = get_demo_case("chest-pain")
    clinic = build_simulated_clinic(case, patient_model=scripted(), measurement_model=None)
    ecg = await clinic.respond("test", "ECG", [])
    assert ecg.speaker == "measurement" and ecg.source == "test:tests.Electrocardiogram" and ecg.available
    assert ecg.text.startswith("RESULTS: Electrocardiogram: Sinus bradycardia") and "II, III and aVF" in ecg.text
    assert ecg.calls == 0 and ecg.model is None
    troponin = await clinic.respond("test", "troponin", [])
    assert "4,850 ng/L" in troponin.text
    missing = await clinic.respond("test", "Coronary angiogram", [])
    assert missing == Observation(text="RESULTS: Coronary angiogram: not available", speaker="measurement",
                                  source="test:Coronary angiogram", available=False)
    assert clinic.leaks == []


async def test_agentclinic_mode_answers_unlisted_tests_with_the_model(scripted):
    case = get_demo_case("chest-pain")
    clinic = build_simulated_clinic(case, patient_model=scripted(),
                                    measurement_model=scripted("RESULTS: NORMAL READINGS"), mode="agentclinic")
    observation = await clinic.respond("test", "Coronary angiogram", [])
    assert observation.text == "RESULTS: NORMAL READINGS" and observation.available
    assert observation.calls == 1 and observation.model == "scripted:test"


async def test_results_that_reveal_the_diagnosis_are_flagged(gout_case, scripted):
    clinic = build_simulated_clinic(gout_case, patient_model=scripted(), measurement_model=None)
    observation = await clinic.respond("test", "joint aspiration", [])
    assert "consistent with gout" in observation.text
    await clinic.respond("test", "joint aspiration", [])
    assert clinic.leaks == ["test:tests.Joint_Aspiration"]


def test_leak_and_redaction_helpers(gout_case):
    assert leaks_diagnosis(gout_case, "Crystals consistent with GOUT.")
    assert not leaks_diagnosis(gout_case, "Pseudogout crystals")
    assert redact_diagnosis(gout_case, "Gout? gout!") == ("[redacted]? [redacted]!", 2)


async def test_unknown_action_and_mismatched_actors(gout_case, scripted):
    demo = get_demo_case("chest-pain")
    clinic = build_simulated_clinic(gout_case, patient_model=scripted(), measurement_model=None)
    with pytest.raises(ValueError, match="answers 'ask' or 'test'"):
        await clinic.respond("diagnose", "Gout", [])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="measurement actor plays case 'demo:chest-pain'"):
        SimulatedClinic(gout_case, PatientActor(scripted(), gout_case), MeasurementActor(None, demo))
