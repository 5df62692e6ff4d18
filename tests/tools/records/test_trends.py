"""lab_trends: grouping, ordering and the direction of each value against the one before."""

from __future__ import annotations

from datetime import date

import pytest

from tests.tools.records.factories import lab, vital
from tools.records import lab_trends
from tools.records.trends import STABLE_FRACTION


def test_values_newest_first_and_tests_by_latest_date() -> None:
    trends = lab_trends([
        lab("g1", "2345-7", "Glucose", 90, "2020-01-01"),
        lab("a2", "4548-4", "HbA1c", 6.0, "2021-06-01", unit="%"),
        lab("g3", "2345-7", "Glucose", 120, "2023-01-01"),
        lab("g2", "2345-7", "Glucose", 100, "2022-01-01"),
        vital("w", "29463-7", "Weight", 80, "2024-01-01", "kg"),
    ])
    assert [t.name for t in trends] == ["Glucose", "HbA1c"]
    assert [v.source for v in trends[0].values] == ["Observation/g3", "Observation/g2", "Observation/g1"]
    assert trends[0].latest.when == date(2023, 1, 1)
    assert trends[0].key == "http://loinc.org|2345-7"


def test_direction_up_down_stable_without_a_range() -> None:
    trends = lab_trends([
        lab("1", "x", "X", 100, "2020-01-01"),
        lab("2", "x", "X", 104, "2020-02-01"),  # +4% of 100: stable
        lab("3", "x", "X", 120, "2020-03-01"),  # up
        lab("4", "x", "X", 90, "2020-04-01"),  # down
    ])
    assert [v.direction for v in trends[0].values] == ["down", "up", "stable", None]


def test_direction_tolerance_uses_the_reference_range_width() -> None:
    # Range 4-6 (width 2): a change of 0.1 is stable (5% of 2), 0.2 is not, although both are under 5% of 100.
    ref = (4.0, 6.0)
    trends = lab_trends([
        lab("1", "k", "Potassium", 5.0, "2020-01-01", unit="mmol/L", ref=ref),
        lab("2", "k", "Potassium", 5.1, "2020-02-01", unit="mmol/L", ref=ref),
        lab("3", "k", "Potassium", 4.9, "2020-03-01", unit="mmol/L", ref=ref),
    ])
    assert [v.direction for v in trends[0].values] == ["down", "stable", None]
    assert STABLE_FRACTION == 0.05


def test_unit_change_and_non_numeric_values_have_no_direction() -> None:
    coded = lab("3", "u", "Urine protein", 0, "2020-03-01")
    del coded["valueQuantity"]
    coded["valueCodeableConcept"] = {"text": "Positive"}
    trends = lab_trends([
        lab("1", "c", "Creatinine", 1.0, "2020-01-01"),
        lab("2", "c", "Creatinine", 88, "2020-02-01", unit="umol/L"),
        coded,
    ])
    by_name = {t.name: t for t in trends}
    assert by_name["Creatinine"].latest.direction is None
    assert by_name["Urine protein"].latest.text == "Positive"
    assert by_name["Urine protein"].latest.value is None


def test_direction_skips_a_non_numeric_predecessor() -> None:
    middle = lab("2", "x", "X", 0, "2020-02-01")
    del middle["valueQuantity"]
    middle["dataAbsentReason"] = {"text": "Not performed"}
    trends = lab_trends([lab("1", "x", "X", 10, "2020-01-01"), middle, lab("3", "x", "X", 20, "2020-03-01")])
    assert [(v.text, v.direction) for v in trends[0].values] == [
        ("20 mg/dL", "up"), ("no value (Not performed)", None), ("10 mg/dL", None)]


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_void_results_are_left_out(status: str) -> None:
    trends = lab_trends([lab("1", "x", "X", 10, "2020-01-01"), lab("2", "x", "X", 99, "2021-01-01", status=status)])
    assert [v.source for v in trends[0].values] == ["Observation/1"]


def test_duplicates_by_reference_count_once_and_the_last_wins() -> None:
    old = lab("1", "x", "X", 10, "2020-01-01", meta={"versionId": "1"})
    new = lab("1", "x", "X", 12, "2020-01-01", meta={"versionId": "2"})
    trends = lab_trends([old, new])
    assert len(trends[0].values) == 1
    assert trends[0].latest.versioned_source == "Observation/1/_history/2"


def test_malformed_lab_fields_do_not_crash() -> None:
    raw = lab("1", "x", "X", 10, "not a date")
    raw["valueQuantity"] = {"value": "ten"}
    raw["referenceRange"] = [{"low": "x"}, None]
    trends = lab_trends([raw, {"resourceType": "Observation"}, "junk", None])  # type: ignore[list-item]
    assert trends[0].latest.when is None and trends[0].latest.value is None
