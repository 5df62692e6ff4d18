"""Loading bundles into a real sekmet-fhir on 127.0.0.1: Synthea ids kept, searchable, $everything, clear errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tools.fhirserver import BundleLoadError, free_port, load_bundles

pytestmark = pytest.mark.slow


def read_bundle(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes())


def patient_of(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


@pytest.fixture(scope="module")
def http(loaded_fhir_server) -> httpx.Client:
    with httpx.Client(base_url=loaded_fhir_server.base_url + "/", timeout=30, trust_env=False) as client:
        yield client


def test_every_synthea_bundle_loaded_with_its_patient_id(synthea_load, synthea_bundles):
    assert len(synthea_load.bundles) == len(synthea_bundles)
    expected = [patient_of(read_bundle(p))["id"] for p in synthea_bundles]
    assert synthea_load.patient_ids == expected
    entries = sum(len(read_bundle(p)["entry"]) for p in synthea_bundles)
    assert synthea_load.resources == entries
    assert all(b.created + b.updated == b.entries for b in synthea_load.bundles)


def test_patients_are_read_back_by_their_original_ids(http, synthea_bundles):
    for path in synthea_bundles[:4]:
        original = patient_of(read_bundle(path))
        answer = http.get(f"Patient/{original['id']}")
        assert answer.status_code == 200, path.name
        assert answer.json()["name"][0]["family"] == original["name"][0]["family"]
        assert answer.json()["birthDate"] == original["birthDate"]


def test_search_by_name_finds_the_patient(http, synthea_bundles):
    original = patient_of(read_bundle(synthea_bundles[0]))
    found = http.get("Patient", params={"name": original["name"][0]["family"]}).json()
    assert original["id"] in [e["resource"]["id"] for e in found.get("entry", [])]
    assert http.get("Patient", params={"name": "Zzyzx-nobody"}).json()["total"] == 0


def test_counts_per_type_match_the_bundle_file(http, synthea_bundles):
    bundle = read_bundle(synthea_bundles[1])
    pid = patient_of(bundle)["id"]
    in_file = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    for rtype, param in (("Observation", "patient"), ("Condition", "patient"), ("Encounter", "patient"),
                         ("MedicationRequest", "patient"), ("Immunization", "patient")):
        total = http.get(rtype, params={param: pid, "_summary": "count"}).json()["total"]
        assert total == in_file[rtype], rtype


def test_everything_returns_the_patients_resources_with_their_ids(http, synthea_bundles):
    bundle = read_bundle(synthea_bundles[0])
    pid = patient_of(bundle)["id"]
    answer = http.get(f"Patient/{pid}/$everything").json()
    got = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in answer["entry"]}
    in_file = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    # sekmet 0.1.1 has no search parameters for Goal (nor FamilyMemberHistory), so $everything cannot find them
    missing = in_file - got
    assert {ref.split("/")[0] for ref in missing} <= {"Goal"}
    assert len(in_file & got) > 0.9 * len(in_file)
    # the references were rewritten to the kept ids, so they resolve inside the same record
    observation = next(e["resource"] for e in answer["entry"] if e["resource"]["resourceType"] == "Observation")
    assert observation["subject"]["reference"] == f"Patient/{pid}"
    assert observation["encounter"]["reference"] in got


def test_loading_again_updates_in_place(loaded_fhir_server, synthea_bundles, http):
    patients_before = http.get("Patient", params={"_summary": "count"}).json()["total"]
    report = load_bundles(loaded_fhir_server.base_url, synthea_bundles[:1], concurrency=1)
    bundle = report.bundles[0]
    assert bundle.source == str(synthea_bundles[0])
    assert bundle.created == 0 and bundle.updated == bundle.entries
    assert http.get("Patient", params={"_summary": "count"}).json()["total"] == patients_before


def test_a_refused_bundle_names_its_source_and_carries_the_outcome(fhir_server):
    bad = {"resourceType": "Bundle", "type": "transaction", "id": "broken-demo", "entry": [
        {"resource": {"resourceType": "Patient", "id": "loader-test-a"},
         "request": {"method": "PUT", "url": "Patient/loader-test-b"}},
    ]}
    with pytest.raises(BundleLoadError) as info:
        load_bundles(fhir_server.base_url, [bad], keep_ids=False)
    error = info.value
    assert str(error).startswith("bundle[0] broken-demo: HTTP 400")
    assert "does not match" in str(error)  # the server's own diagnostics
    assert error.status == 400 and error.outcome["resourceType"] == "OperationOutcome"
    assert httpx.get(f"{fhir_server.base_url}/Patient/loader-test-a", timeout=5).status_code == 404  # rolled back


def test_a_file_that_is_not_json_is_named(tmp_path, fhir_server):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(BundleLoadError, match=r"broken\.json: not valid JSON"):
        load_bundles(fhir_server.base_url, [path])


def test_an_unreachable_server_is_a_load_error():
    base = f"http://127.0.0.1:{free_port()}/fhir"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    with pytest.raises(BundleLoadError, match="could not reach"):
        load_bundles(base, [bundle], timeout=5)
