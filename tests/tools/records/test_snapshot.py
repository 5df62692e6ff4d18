"""build_snapshot on small hand-written records: what each section keeps, counts, as-of dates and sources."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tests.tools.records.factories import (
    allergy,
    blood_pressure,
    condition,
    encounter,
    immunization,
    lab,
    medication,
    patient,
    procedure,
    vital,
)
from tools.records import build_snapshot

RECORD = [
    patient(meta={"versionId": "4"}),
    allergy("al1", "Penicillin"), allergy("al2", "Latex", status="resolved"),
    condition("c1", "44054006", "Diabetes", "active", "2010-01-01"),
    condition("c2", "38341003", "Hypertension", "active", "2012-01-01"),
    condition("c3", "444814009", "Viral sinusitis", "resolved", "2015-01-01", "2015-01-20T00:00:00Z"),
    condition("c4", "444814009", "Viral sinusitis", "resolved", "2019-03-01", "2019-03-15T00:00:00Z"),
    condition("c5", "38341003", "Hypertension", "resolved", "2005-01-01", "2006-01-01"),  # also active: not resolved
    condition("c6", "1", "Wrong entry", "active", "2020-01-01",
              verificationStatus={"coding": [{"code": "entered-in-error"}]}),
    medication("m1", "860975", "Metformin 500 MG", "active", "2018-01-01",
               dosageInstruction=[{"text": "twice daily"}]),
    medication("m2", "860975", "Metformin 500 MG", "active", "2021-01-01"),
    medication("m3", "197361", "Amlodipine 5 MG", "stopped", "2016-01-01"),
    vital("w1", "29463-7", "Body weight", 80, "2021-01-01", "kg"),
    vital("w2", "29463-7", "Body weight", 82.5, "2023-01-01", "kg"),
    blood_pressure("bp1", 141, 92, "2023-01-01"),
    lab("l1", "4548-4", "HbA1c", 6.5, "2022-01-01", unit="%"),
    lab("l2", "4548-4", "HbA1c", 7.2, "2023-01-01", unit="%", ref=(4.0, 5.6),
        interpretation=[{"coding": [{"code": "H"}]}]),
    encounter("e1", "2021-01-01"), encounter("e2", "2023-01-01T10:00:00+02:00"),
    procedure("pr1", "Colonoscopy", "2020-05-05"), procedure("pr2", "Not done", "2020-06-06", status="not-done"),
    immunization("i1", "140", "Influenza", "2021-10-01"), immunization("i2", "140", "Influenza", "2022-10-01"),
    immunization("i3", "113", "Td", "2015-01-01"),
    {"resourceType": "Claim", "id": "cl1", "status": "active", "created": "2024-02-02"},
    {"resourceType": "Observation", "note": "no id: not citable", "effectiveDateTime": "2030-01-01"},
]


def test_counts_per_section() -> None:
    snapshot = build_snapshot(RECORD)
    assert snapshot.counts() == {
        "demographics": 1, "allergies": 1, "active_problems": 2, "medications": 1, "vitals": 2, "labs": 1,
        "lab_values": 2, "encounters": 2, "procedures": 1, "immunizations": 2, "resolved_problems": 1,
    }


def test_as_of_is_the_latest_date_seen_and_sets_the_age() -> None:
    snapshot = build_snapshot(RECORD)
    assert snapshot.as_of == date(2024, 2, 2)
    assert snapshot.demographics is not None
    assert snapshot.demographics.age == 63
    assert snapshot.demographics.item.versioned_source == "Patient/p1/_history/4"
    assert snapshot.demographics.item.text == "Ada Stone, female, born 1960-06-15, age 63"


def test_now_overrides_as_of_and_age() -> None:
    now = datetime(2030, 6, 15, 12, tzinfo=UTC)
    snapshot = build_snapshot(RECORD, now=now)
    assert snapshot.as_of == now and snapshot.demographics.age == 70


def test_deceased_patient_age_stops_at_death() -> None:
    snapshot = build_snapshot([patient(deceasedDateTime="2000-06-14T00:00:00Z")], now=datetime(2030, 1, 1, tzinfo=UTC))
    assert snapshot.demographics.deceased and snapshot.demographics.age == 39


def test_problems_group_by_code_and_keep_the_most_recent_source() -> None:
    snapshot = build_snapshot(RECORD)
    assert [(i.source, i.text) for i in snapshot.active_problems] == [
        ("Condition/c2", "Hypertension"), ("Condition/c1", "Diabetes")]
    (resolved,) = snapshot.resolved_problems
    assert resolved.source == "Condition/c4"
    assert resolved.text == "Viral sinusitis (onset 2019-03-01, 2 episodes)"
    assert resolved.as_of == datetime(2019, 3, 15, tzinfo=UTC)


def test_medications_latest_active_request_per_drug() -> None:
    (med,) = build_snapshot(RECORD).medications
    assert med.source == "MedicationRequest/m2" and med.text == "Metformin 500 MG"


def test_latest_vitals_with_blood_pressure_components() -> None:
    vitals = {i.source: i.text for i in build_snapshot(RECORD).vitals}
    assert vitals == {"Observation/w2": "Body weight 82.5 kg", "Observation/bp1": "Blood pressure 141/92 mm[Hg]"}


def test_lab_items_carry_value_range_interpretation_and_direction() -> None:
    items = build_snapshot(RECORD).lab_items()
    assert [(i.section, i.text) for i in items] == [
        ("labs", "HbA1c 7.2 % (ref 4-5.6) high up"), ("lab_history", "HbA1c 6.5 %")]


def test_sections_are_most_recent_first_and_void_ones_left_out() -> None:
    snapshot = build_snapshot(RECORD)
    assert [i.source for i in snapshot.encounters] == ["Encounter/e2", "Encounter/e1"]
    assert [i.source for i in snapshot.procedures] == ["Procedure/pr1"]
    assert [(i.source, i.text) for i in snapshot.immunizations] == [
        ("Immunization/i2", "Influenza (2 doses, latest shown)"), ("Immunization/i3", "Td")]
    assert [i.source for i in snapshot.allergies] == ["AllergyIntolerance/al1"]


def test_every_item_cites_a_resource_of_the_record() -> None:
    snapshot = build_snapshot(RECORD)
    known = {f"{r['resourceType']}/{r['id']}" for r in RECORD if "id" in r}
    items = snapshot.items()
    assert len(items) == 1 + sum(v for k, v in snapshot.counts().items() if k not in ("demographics", "labs"))
    assert {i.source for i in items} <= known


def test_empty_and_malformed_records_do_not_crash() -> None:
    empty = build_snapshot([])
    assert empty.demographics is None and empty.as_of is None and set(empty.counts().values()) == {0}
    records: list = [{"resourceType": "Condition", "id": "x", "code": 5, "clinicalStatus": []},
                     {"resourceType": "Patient", "id": "p", "birthDate": "garbage", "name": [None]},
                     {"resourceType": "MedicationRequest", "id": "m", "status": "active"}, 7]
    junk = build_snapshot(records)
    assert junk.demographics is not None and junk.demographics.age is None
    assert junk.counts()["active_problems"] == 0 and junk.counts()["medications"] == 0
