"""keep_ids_transaction: POST entries become PUT Type/id and every urn:uuid reference becomes Type/id."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import SYNTHEA_BUNDLES
from tools.fhirserver import BundleRewriteError, keep_ids_transaction

PATIENT = "urn:uuid:11111111-1111-4111-8111-111111111111"
ENCOUNTER = "urn:uuid:22222222-2222-4222-8222-222222222222"
CLAIM = "urn:uuid:33333333-3333-4333-8333-333333333333"


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def post(full_url: str | None, resource: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def synthea_like() -> dict[str, Any]:
    """Synthea's shapes: references at the top, in lists, in backbone elements, extensions and contained resources."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            post(PATIENT, {"resourceType": "Patient", "id": "11111111-1111-4111-8111-111111111111"}),
            post(ENCOUNTER, {"resourceType": "Encounter", "id": "enc-1", "subject": {"reference": PATIENT}}),
            post(CLAIM, {"resourceType": "Claim", "id": "claim-1", "patient": {"reference": PATIENT},
                         "item": [{"encounter": [{"reference": ENCOUNTER}]}]}),
            post("urn:uuid:44444444-4444-4444-8444-444444444444", {
                "resourceType": "ExplanationOfBenefit", "id": "eob-1",
                "contained": [{"resourceType": "Coverage", "id": "coverage", "beneficiary": {"reference": PATIENT}}],
                "patient": {"reference": PATIENT},
                "claim": {"reference": CLAIM},
                "insurance": [{"coverage": {"reference": "#coverage"}}],
                "extension": [{"url": "http://example.org/x", "valueReference": {"reference": ENCOUNTER}}],
                "provider": {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|999"},
            }),
        ],
    }


def test_post_entries_become_put_with_the_resource_id():
    out = keep_ids_transaction(synthea_like())
    assert [e["request"] for e in out["entry"]] == [
        {"method": "PUT", "url": "Patient/11111111-1111-4111-8111-111111111111"},
        {"method": "PUT", "url": "Encounter/enc-1"},
        {"method": "PUT", "url": "Claim/claim-1"},
        {"method": "PUT", "url": "ExplanationOfBenefit/eob-1"},
    ]


def test_urn_references_are_rewritten_everywhere_and_others_kept():
    out = keep_ids_transaction(synthea_like())
    eob = out["entry"][3]["resource"]
    assert eob["contained"][0]["beneficiary"]["reference"] == "Patient/11111111-1111-4111-8111-111111111111"
    assert eob["extension"][0]["valueReference"]["reference"] == "Encounter/enc-1"
    assert eob["claim"]["reference"] == "Claim/claim-1"
    assert out["entry"][2]["resource"]["item"][0]["encounter"][0]["reference"] == "Encounter/enc-1"
    # local and conditional references are not ours to resolve
    assert eob["insurance"][0]["coverage"]["reference"] == "#coverage"
    assert eob["provider"]["reference"].startswith("Practitioner?identifier=")
    assert not [r for r in references(out) if r.startswith("urn:")]


def test_the_input_is_not_modified_and_the_rewrite_is_idempotent():
    bundle = synthea_like()
    before = copy.deepcopy(bundle)
    once = keep_ids_transaction(bundle)
    assert bundle == before
    assert keep_ids_transaction(once) == once


def test_entries_without_ids_get_deterministic_ids():
    bundle = synthea_like()
    del bundle["entry"][0]["resource"]["id"]  # falls back to the uuid of its fullUrl
    bundle["entry"].append(post(None, {"resourceType": "Observation", "status": "final",
                                       "code": {"text": "x"}, "subject": {"reference": PATIENT}}))
    first, second = keep_ids_transaction(bundle), keep_ids_transaction(copy.deepcopy(bundle))
    assert first == second
    assert first["entry"][0]["request"]["url"] == "Patient/11111111-1111-4111-8111-111111111111"
    made_up = first["entry"][-1]["resource"]["id"]
    assert first["entry"][-1]["request"]["url"] == f"Observation/{made_up}" and len(made_up) == 36
    assert first["entry"][-1]["resource"]["subject"]["reference"] == "Patient/11111111-1111-4111-8111-111111111111"


def test_non_write_entries_and_conditional_updates_are_kept():
    bundle = synthea_like()
    conditional = {"fullUrl": "urn:uuid:55555555-5555-4555-8555-555555555555",
                   "resource": {"resourceType": "Organization", "name": "Acme"},
                   "request": {"method": "PUT", "url": "Organization?identifier=acme"}}
    lookup = {"request": {"method": "GET", "url": "Patient?name=x"}}
    bundle["entry"] += [conditional, lookup]
    bundle["entry"][1]["resource"]["serviceProvider"] = {"reference": conditional["fullUrl"]}
    out = keep_ids_transaction(bundle)
    assert out["entry"][-2] == conditional and out["entry"][-1] == lookup
    # only the server knows which Organization that is, so the reference is left for it to resolve
    assert out["entry"][1]["resource"]["serviceProvider"]["reference"] == conditional["fullUrl"]


def test_a_dangling_urn_reference_is_refused_with_the_entry():
    bundle = synthea_like()
    bundle["entry"][1]["resource"]["subject"]["reference"] = "urn:uuid:99999999-9999-4999-8999-999999999999"
    with pytest.raises(BundleRewriteError, match=r"entry 1: reference 'urn:uuid:9999"):
        keep_ids_transaction(bundle)


def test_two_entries_for_the_same_resource_are_refused():
    bundle = synthea_like()
    bundle["entry"].append(post(None, {"resourceType": "Encounter", "id": "enc-1"}))
    with pytest.raises(BundleRewriteError, match="Encounter/enc-1"):
        keep_ids_transaction(bundle)


@pytest.mark.parametrize("bad", [{"resourceType": "Patient"}, {"resourceType": "Bundle", "type": "searchset"}])
def test_only_transaction_or_batch_bundles_are_accepted(bad):
    with pytest.raises(BundleRewriteError):
        keep_ids_transaction(bad)


def test_a_real_synthea_bundle_keeps_every_id_and_loses_every_urn():
    paths = sorted(SYNTHEA_BUNDLES.glob("*.json")) if SYNTHEA_BUNDLES.is_dir() else []
    if not paths:
        pytest.skip(f"no Synthea bundles at {SYNTHEA_BUNDLES} (../shared/data is not present)")
    bundle = json.loads(paths[0].read_bytes())
    out = keep_ids_transaction(bundle)
    ids = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]]
    assert [e["request"]["url"] for e in out["entry"]] == ids
    assert all(e["request"]["method"] == "PUT" for e in out["entry"])
    refs = list(references(out))
    assert len(refs) > 100 and not [r for r in refs if r.startswith("urn:uuid:")]
    assert {r for r in refs if not r.startswith("#")} <= set(ids)  # every reference points inside the bundle
