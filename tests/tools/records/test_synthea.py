"""The records functions over the 15 Synthea R4 bundles in ../shared/data: counts recomputed straight from the
bundle JSON by independent code here, labs sorted by date, sources that exist, renderings within budget."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DATA
from tools.records import build_manifest, build_snapshot, lab_trends, render_snapshot, resource_line

BUNDLES = SHARED_DATA / "synthea" / "bundles"
PATHS = sorted(BUNDLES.glob("*.json")) if BUNDLES.is_dir() else []
CITATION = re.compile(r"\[([A-Z][A-Za-z]+/[A-Za-z0-9\-.]+)\]$")


@pytest.fixture(scope="module", params=PATHS or [None], ids=lambda p: p.stem.split("_")[0] if p else "absent")
def resources(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    path: Path | None = request.param
    if path is None:
        pytest.skip(f"Synthea bundles not found under {BUNDLES} (../shared/data is absent)")
    bundle = json.loads(path.read_text(encoding="utf-8"))
    return [entry["resource"] for entry in bundle["entry"]]


def test_all_fifteen_bundles_are_there() -> None:
    if not PATHS:
        pytest.skip(f"Synthea bundles not found under {BUNDLES} (../shared/data is absent)")
    assert len(PATHS) == 15


# --- an independent, deliberately plain recomputation of the snapshot counts (snapshot.py's docstring) ---

def _key(concept: dict[str, Any] | None) -> str | None:
    for coding in (concept or {}).get("coding", []):
        if coding.get("code"):
            return f"{coding.get('system', '')}|{coding['code']}"
    text = (concept or {}).get("text")
    return f"text:{text.lower()}" if text else None


def _status(concept: dict[str, Any] | None) -> str | None:
    codings = (concept or {}).get("coding", [])
    return codings[0].get("code") if codings else None


def _void(r: dict[str, Any]) -> bool:
    return r.get("status") in ("entered-in-error", "cancelled", "not-done") or _status(
        r.get("verificationStatus")) in ("entered-in-error", "refuted")


def _of(resources: list[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    return (r for r in resources if r["resourceType"] == kind and not _void(r))


def _category(r: dict[str, Any], code: str) -> bool:
    return any(c.get("code") == code for cat in r.get("category", []) for c in cat.get("coding", []))


def expected_counts(resources: list[dict[str, Any]]) -> dict[str, int]:
    active = {_key(r["code"]) for r in _of(resources, "Condition")
              if _status(r.get("clinicalStatus")) in ("active", "recurrence", "relapse")}
    resolved = {_key(r["code"]) for r in _of(resources, "Condition")
                if _status(r.get("clinicalStatus")) in ("resolved", "inactive", "remission")} - active
    labs = [r for r in _of(resources, "Observation") if _category(r, "laboratory")]
    meds = [r for kind in ("MedicationRequest", "MedicationStatement") for r in _of(resources, kind)
            if r.get("status") == "active"]
    return {
        "demographics": 1 if any(r["resourceType"] == "Patient" for r in resources) else 0,
        "allergies": sum(1 for r in _of(resources, "AllergyIntolerance")
                         if _status(r.get("clinicalStatus")) not in ("inactive", "resolved")),
        "active_problems": len(active),
        "medications": len({_key(r.get("medicationCodeableConcept")) for r in meds}),
        "vitals": len({_key(r["code"]) for r in _of(resources, "Observation") if _category(r, "vital-signs")}),
        "labs": len({_key(r["code"]) for r in labs}),
        "lab_values": len(labs),
        "encounters": sum(1 for _ in _of(resources, "Encounter")),
        "procedures": sum(1 for _ in _of(resources, "Procedure")),
        "immunizations": len({_key(r["vaccineCode"]) for r in _of(resources, "Immunization")}),
        "resolved_problems": len(resolved),
    }


def test_snapshot_counts_equal_counts_from_the_bundle(resources: list[dict[str, Any]]) -> None:
    started = time.perf_counter()
    snapshot = build_snapshot(resources)
    elapsed = time.perf_counter() - started
    assert snapshot.counts() == expected_counts(resources)
    assert elapsed < 2.0, f"build_snapshot took {elapsed:.3f} s"


def test_labs_are_sorted_by_date(resources: list[dict[str, Any]]) -> None:
    trends = lab_trends(resources)
    assert trends, "every Synthea patient here has laboratory results"
    latest = [t.latest.when for t in trends]
    assert latest == sorted(latest, reverse=True)
    for trend in trends:
        dates = [v.when for v in trend.values]
        assert None not in dates and dates == sorted(dates, reverse=True)


def test_every_snapshot_item_comes_from_the_bundle(resources: list[dict[str, Any]]) -> None:
    known = {f"{r['resourceType']}/{r['id']}" for r in resources}
    items = build_snapshot(resources).items()
    assert items and {i.source for i in items} <= known
    assert all(i.as_of is not None for i in items)


@pytest.mark.parametrize("budget", [300, 1200, 4000])
def test_render_fits_its_budget_and_cites_the_bundle(resources: list[dict[str, Any]], budget: int) -> None:
    known = {f"{r['resourceType']}/{r['id']}" for r in resources}
    snapshot = build_snapshot(resources, now=datetime(2025, 1, 1, tzinfo=UTC))
    text = render_snapshot(snapshot, token_budget=budget)
    assert len(text) / 4 <= budget
    cited = [CITATION.search(line) for line in text.splitlines() if line.lstrip().startswith(("- ", "Patient:"))]
    assert cited and all(cited)
    assert {m.group(1) for m in cited if m} <= known
    essentials = snapshot.allergies + snapshot.active_problems + snapshot.medications
    if budget >= 1200 and len(render_snapshot(snapshot, token_budget=10**6)) / 4 > budget:
        # Over budget the essentials stay as long as anything else is still shown.
        assert all(f"[{item.source}]" in text for item in essentials)


def test_every_resource_gets_a_single_line(resources: list[dict[str, Any]]) -> None:
    for raw in resources:
        line = resource_line(raw)
        if raw["resourceType"] in ("Claim", "ExplanationOfBenefit"):
            assert line is None
            continue
        assert line is not None and line.reference == f"{raw['resourceType']}/{raw['id']}"
        assert "\n" not in line.render() and line.render().count("[") >= 1


def test_manifest_counts_every_resource_type(resources: list[dict[str, Any]]) -> None:
    expected: dict[str, int] = {}
    for raw in resources:
        expected[raw["resourceType"]] = expected.get(raw["resourceType"], 0) + 1
    manifest = build_manifest(resources)
    assert manifest.counts() == expected
    observation_codes = {_key(r["code"]) for r in resources if r["resourceType"] == "Observation"}
    listed = next(t for t in manifest.types if t.resource_type == "Observation").codes
    assert {f"{c.system}|{c.code}" for c in listed} == observation_codes
