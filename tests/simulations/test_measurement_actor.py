"""The measurement actor: listed tests answered exactly without a model; unlisted tests per protocol mode."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from simulations.measurement import MeasurementActor, clean_result


async def test_listed_test_is_answered_verbatim_without_a_model(gout_case, scripted):
    model = scripted()  # no replies: any call fails the test
    for mode in ("strict", "agentclinic"):
        reply = await MeasurementActor(model, gout_case, mode).answer("REQUEST TEST: CBC.")
        assert reply.text == (
            "RESULTS: Complete Blood Count: WBC: 11,200/µL; Hemoglobin: 14.8 g/dL; Platelets: 250,000/µL"
        )
        assert reply.available and reply.names == ["tests.Complete_Blood_Count"]
        assert reply.usage.calls == 0 and reply.parts[0].method == "listed"
    assert model.seen == []


async def test_strict_mode_says_not_available(gout_case):
    actor = MeasurementActor(None, gout_case)  # strict needs no model at all
    reply = await actor.answer("MRI of the lumbar spine")
    assert reply.text == "RESULTS: MRI of the lumbar spine: not available"
    assert reply.available is False and reply.names == ["MRI of the lumbar spine"]
    assert reply.parts[0].method == "not_available"


async def test_agentclinic_mode_asks_the_model_with_the_findings(gout_case, scripted):
    model = scripted("RESULTS: NORMAL READINGS")
    actor = MeasurementActor(model, gout_case, "agentclinic")
    reply = await actor.answer("Lipid panel")
    assert reply.text == "RESULTS: NORMAL READINGS"
    assert reply.available is True and reply.parts[0].method == "model"
    assert reply.usage.calls == 1 and reply.usage.model == "scripted:test" and reply.usage.input_tokens == 101
    system, human = model.seen[0]
    assert isinstance(system, SystemMessage) and isinstance(human, HumanMessage)
    assert "Serum Uric Acid: 9.1 mg/dL" in system.content and "NORMAL READINGS" in system.content
    assert "Lipid panel" in human.content
    assert model.kwargs_seen[0]["max_new_tokens"] == 120


@pytest.mark.parametrize("answer", ["", "   ", "RESULTS:", "\nDoctor: what about the lipids?"])
async def test_agentclinic_unusable_answer_falls_back_to_normal_readings(gout_case, scripted, answer):
    reply = await MeasurementActor(scripted(answer), gout_case, "agentclinic").answer("Lipid panel")
    assert reply.text == "RESULTS: NORMAL READINGS"
    assert reply.parts[0].method == "fallback"


async def test_agentclinic_keeps_a_usable_invented_result(gout_case, scripted):
    reply = await MeasurementActor(scripted("**RESULTS:** LDL 130 mg/dL"), gout_case, "agentclinic").answer("lipids")
    assert reply.text == "RESULTS: LDL 130 mg/dL"


async def test_an_order_of_several_tests(gout_case):
    reply = await MeasurementActor(None, gout_case).answer("CBC, uric acid and a D-dimer")
    assert reply.text.splitlines() == [
        "RESULTS: Complete Blood Count: WBC: 11,200/µL; Hemoglobin: 14.8 g/dL; Platelets: 250,000/µL",
        "Serum Uric Acid: 9.1 mg/dL",
        "D-dimer: not available",
    ]
    assert reply.names == ["tests.Complete_Blood_Count", "tests.Serum_Uric_Acid", "D-dimer"]
    assert reply.available is False


async def test_agentclinic_several_tests_one_model_call_for_the_unlisted(gout_case, scripted):
    model = scripted("RESULTS: D-dimer: 0.3 mg/L; ferritin: 80 ng/mL")
    reply = await MeasurementActor(model, gout_case, "agentclinic").answer("ECG; D-dimer; ferritin")
    assert reply.text.splitlines() == ["RESULTS: Electrocardiogram: Normal sinus rhythm.",
                                       "D-dimer: 0.3 mg/L; ferritin: 80 ng/mL"]
    assert len(model.seen) == 1 and "D-dimer, ferritin" in model.seen[0][-1].content


async def test_an_order_naming_one_test_with_and_is_not_split(tmp_path, medqa_record, write_lines):
    from simulations.cases import load_case

    record = medqa_record(Test_Results={"CT_Scan_Thorax_and_Abdomen": {"Findings": "No mass."}})
    case = load_case(write_lines(tmp_path / "x.jsonl", [record]), 0)
    reply = await MeasurementActor(None, case).answer("CT of the thorax and abdomen")
    assert reply.text == "RESULTS: CT Scan Thorax and Abdomen: No mass."


async def test_empty_order(gout_case):
    reply = await MeasurementActor(None, gout_case).answer("REQUEST TEST:  ")
    assert reply.available is False and reply.parts == []


def test_modes_are_checked(gout_case):
    with pytest.raises(ValueError, match="needs a chat model"):
        MeasurementActor(None, gout_case, "agentclinic")
    with pytest.raises(ValueError, match="unknown measurement mode"):
        MeasurementActor(None, gout_case, "lenient")  # type: ignore[arg-type]


def test_clean_result():
    assert clean_result("Results: normal readings.") == "NORMAL READINGS"
    assert clean_result("RESULTS: WBC 9\nDoctor: thanks") == "WBC 9"
    assert clean_result("  ") is None
    assert clean_result("Test: Coronary angiogram") is None
    # What the embedded 135M model actually wrote: an echo, then an essay about the procedure.
    essay = "RESULTS: Test: Coronary angiogram\n\nThe test is a procedure.\n\nIt uses a catheter."
    assert clean_result(essay) == "The test is a procedure."
