"""build_manifest: per type counts and codes, rendered compactly for a model choosing what to fetch."""

from __future__ import annotations

from datetime import date

from tests.tools.records.factories import condition, encounter, lab, patient, vital
from tools.records import build_manifest

RECORD = [
    patient(),
    lab("a", "2345-7", "Glucose", 90, "2020-01-01"), lab("b", "2345-7", "Glucose", 95, "2022-01-01"),
    lab("c", "4548-4", "HbA1c", 6, "2021-01-01", unit="%"), vital("d", "29463-7", "Weight", 80, "2019-01-01", "kg"),
    condition("e", "44054006", "Diabetes", "active", "2010-01-01"),
    encounter("f", "2018-01-01"), encounter("g", "2019-01-01"),
    {"resourceType": "Goal", "id": "h", "description": {"text": "A1c below 7"}},
    {"resourceType": "Observation", "code": {"text": "no id, not counted"}},
]


def test_counts_and_codes_per_type() -> None:
    manifest = build_manifest(RECORD)
    assert manifest.counts() == {"Observation": 4, "Encounter": 2, "Condition": 1, "Goal": 1, "Patient": 1}
    observations = manifest.types[0]
    assert observations.latest == date(2022, 1, 1)
    assert [(c.display, c.token, c.count, c.latest) for c in observations.codes] == [
        ("Glucose", "http://loinc.org|2345-7", 2, date(2022, 1, 1)),
        ("HbA1c", "http://loinc.org|4548-4", 1, date(2021, 1, 1)),
        ("Weight", "http://loinc.org|29463-7", 1, date(2019, 1, 1)),
    ]
    assert observations.categories == (("laboratory", 3), ("vital-signs", 1))


def test_render_lists_types_and_caps_codes() -> None:
    text = build_manifest(RECORD).render(codes_per_type=2)
    lines = text.splitlines()
    assert lines[0] == ("Observation: 4 resources; categories laboratory 3, vital-signs 1; latest 2022-01-01; "
                        "3 codes, showing the 2 most recent")
    assert lines[1] == "  - Glucose (http://loinc.org|2345-7) x2, latest 2022-01-01"
    assert "Weight" not in text
    assert "Goal: 1 resource; 1 code" in lines and "  - A1c below 7 x1" in lines
    assert "Patient: 1 resource; latest 1960-06-15" in lines


def test_malformed_input_is_skipped() -> None:
    junk: list = [None, 3, {"resourceType": "Observation", "id": "x", "code": ["bad"]}]
    manifest = build_manifest(junk)
    assert manifest.counts() == {"Observation": 1} and manifest.types[0].codes == ()
