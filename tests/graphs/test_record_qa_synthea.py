"""The record question-answering graph over Synthea patients from ../shared (skipped when they are absent)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agents.navigator import Navigator
from graphs.record_qa import ask_record, build_record_qa_graph
from graphs.record_store import InMemoryRecordStore
from tests.conftest import SHARED_DATA
from tests.doctor.fakes import scripted
from tests.navigator.small_record import RecordingStore

BUNDLES = SHARED_DATA / "synthea" / "bundles"
NOW = date(2020, 1, 1)


def bundle_files() -> list[Path]:
    files = sorted(BUNDLES.glob("*.json")) if BUNDLES.is_dir() else []
    if not files:
        pytest.skip(f"no Synthea bundles in {BUNDLES}: the shared data folder is absent")
    return files


def patient_id(bundle: dict[str, Any]) -> str:
    return next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


def latest_a1c(bundle: dict[str, Any]) -> str:
    """The newest HbA1c up to NOW, computed straight from the bundle."""
    found = [
        (r["effectiveDateTime"], r["id"])
        for r in (e["resource"] for e in bundle["entry"])
        if r["resourceType"] == "Observation"
        and any(c.get("code") == "4548-4" for c in r["code"].get("coding", []))
        and r["effectiveDateTime"][:10] <= NOW.isoformat()
    ]
    if not found:
        pytest.skip("this bundle has no HbA1c before the stated now")
    return f"Observation/{max(found)[1]}"


async def test_latest_a1c_with_an_invented_citation() -> None:
    path = next(p for p in bundle_files() if p.name.startswith("Ali_Herman"))
    bundle = json.loads(path.read_text(encoding="utf-8"))
    expected = latest_a1c(bundle)
    store = RecordingStore([])
    store.inner = InMemoryRecordStore.from_bundle(bundle)
    model = scripted(
        json.dumps({"fetches": [{"resource_type": "Observation", "codes": ["http://loinc.org|4548-4"]}]}),
        json.dumps({"answer": f"HbA1c [{expected}] (also [Observation/00000000-fake])."}),
    )
    result = await ask_record(build_record_qa_graph(Navigator(model), store), patient_id(bundle),
                              "What was the most recent HbA1c?", NOW)
    (kind, params), = store.searches()
    assert (kind, params["code"], params["date"]) == ("Observation", "4548-4", ["le2020-01-01"])
    assert result.citations[0] == expected
    assert result.dropped_citations == ["Observation/00000000-fake"]
    # The model saw no entry after the stated now.
    prompt = model.calls[1][0][-1].content
    assert "2020-0" not in prompt.split("<record_data>")[1].split("</record_data>")[0].replace("2020-01-01", "")


async def test_every_patient_fallback_answer_cites_only_resources_that_exist() -> None:
    for path in bundle_files():
        bundle = json.loads(path.read_text(encoding="utf-8"))
        store = InMemoryRecordStore.from_bundle(bundle)
        model = scripted("?", "?", "?", "?")
        result = await ask_record((Navigator(model), store), patient_id(bundle), "Which conditions and medications?",
                                  NOW)
        assert result.citations, path.name
        assert result.degraded and result.dropped_citations == []
        assert set(result.types_fetched) <= {"Condition", "MedicationRequest", "MedicationStatement"}
        for citation in result.citations:
            assert await store.resolve(citation) is not None, (path.name, citation)
