"""A panel consultation over a demo patient's FHIR record: every link of its provenance trail points at a source that
exists (a finding, a dialogue answer, a resource of the record)."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from agents.navigator import Navigator
from graphs.checkpointers import open_checkpointer
from graphs.record_store import InMemoryRecordStore
from graphs.store_lookup import StoreRecordLookup
from simulations.cases import get_demo_case
from simulations.demo_records import demo_patient_id, demo_record_bundle
from simulations.session import ConsultationSetup, run_consultation
from simulations.trail import unknown_finding_ids
from tests.panel.fakes import RoleScriptedModel


def _hypothesis(messages: list[Any]) -> str:
    # Cite every finding the brief shows, plus one that does not exist: the trail must keep only real ones.
    brief = str(messages[-1].content)
    shown = [part.split("]")[0] for part in brief.split("[F")[1:]]
    cited = [f"F{n}" for n in shown if n.isdigit()] + ["F404"]
    return json.dumps({
        "differential": [{"diagnosis": "Acute inferior myocardial infarction", "probability": 0.6, "evidence": cited},
                         {"diagnosis": "Stable angina", "probability": 0.2, "evidence": []}],
        "moved_by": cited, "next_step": "test", "question": "When did the pain start?",
    })


async def test_every_link_of_the_trail_points_at_a_source_that_exists() -> None:
    case = get_demo_case("demo:chest-pain")
    bundle = demo_record_bundle(case)
    store = InMemoryRecordStore.from_bundle(bundle)
    resources = {f"{r['resourceType']}/{r['id']}": r for r in (e["resource"] for e in bundle["entry"])}
    record = StoreRecordLookup(store, Navigator(FakeListChatModel(responses=["{}"])), demo_patient_id(case))
    panel_model = RoleScriptedModel(replies={
        "hypothesis": _hypothesis,
        "test_chooser": json.dumps({"tests": [{"name": "ECG", "reason": "ischaemia"}, {"name": "Troponin",
                                                                                        "reason": "infarction"}],
                                    "record_question": "", "image_request": ""}),
    })
    helper = FakeListChatModel(responses=["It started an hour ago."])
    setup = ConsultationSetup(
        case=case,
        models={"reasoning": panel_model, "patient": helper, "measurement": helper,
                "judge": FakeListChatModel(responses=["Yes"])},
        specs={"reasoning": "fake:panel", "patient": "fake", "measurement": "fake", "judge": "fake"},
        max_turns=4, record=record, doctor_mode="panel",
    )
    async with open_checkpointer(None) as saver:
        transcript = await run_consultation(setup, checkpointer=saver, thread_id="trail-1")

    findings = transcript["findings"]
    ids = [f["id"] for f in findings]
    assert ids == [f"F{i}" for i in range(1, len(ids) + 1)]
    assert unknown_finding_ids(transcript) == []
    cited = {i for snapshot in transcript["differentials"] for i in snapshot["moved_by"]}
    assert cited and cited <= set(ids) and "F404" not in cited
    # Each finding's source is something that happened: an answer in the dialogue at that turn, or the record.
    dialogue = transcript["dialogue"]
    for finding in findings:
        source = finding["source"]
        if source == "patient" or source.startswith("test:"):
            speaker = "patient" if source == "patient" else "measurement"
            assert any(e["role"] == speaker and e["turn"] == finding["turn"] and e["text"] == finding["text"]
                       for e in dialogue), finding
        elif source == "record":
            assert finding["refs"], finding
            for ref in finding["refs"]:
                resource = resources.get("/".join(ref.split("/")[:2]))
                assert resource is not None, f"{ref} is not in the patient's record"
                if "/_history/" in ref:
                    assert ref.rsplit("/", 1)[1] == str(resource.get("meta", {}).get("versionId", "1"))
        else:
            raise AssertionError(f"unexpected finding source {source!r}")
    sources = {f["source"] for f in findings}
    assert "record" in sources and any(s.startswith("test:") for s in sources), sources
    # What the panel spent is in the transcript, priced from the fee table.
    assert transcript["cost"]["total"] == sum(e["price"] for e in transcript["cost"]["entries"]) > 0
