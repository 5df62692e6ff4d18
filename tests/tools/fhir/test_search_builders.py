"""Pure search-parameter builders and retry rules."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

import pytest

from tools.fhir import RetryPolicy, date_range, merge_params, search_controls
from tools.fhir.errors import InvalidRequestError
from tools.fhir.retry import retry_after_seconds
from tools.fhir.search import normalise_params


def test_mapping_values_that_are_sequences_repeat_the_name() -> None:
    assert normalise_params({"patient": "1", "date": ["ge2024-01-01", "le2024-12-31"], "_count": 5}) == [
        ("patient", "1"),
        ("date", "ge2024-01-01"),
        ("date", "le2024-12-31"),
        ("_count", "5"),
    ]


def test_pairs_keep_order_and_repeats() -> None:
    pairs = [("date", "ge2024"), ("date", "le2025"), ("code:text", "a1c")]
    assert normalise_params(pairs) == pairs


@pytest.mark.parametrize("bad", [{"a b": "1"}, {"": "1"}, [("x",)], "patient=1", {"x": object()}])
def test_malformed_parameters_are_refused(bad: object) -> None:
    with pytest.raises(InvalidRequestError):
        normalise_params(bad)  # type: ignore[arg-type]


def test_date_range_inclusive_and_open_ended() -> None:
    assert date_range("date", start=date(2024, 1, 1), end=date(2024, 12, 31)) == [
        ("date", "ge2024-01-01"),
        ("date", "le2024-12-31"),
    ]
    assert date_range("onset-date", start=datetime(2024, 3, 1, 8, 30), inclusive=False) == [
        ("onset-date", "gt2024-03-01T08:30:00")
    ]
    assert date_range(end="2020") == [("date", "le2020")]


def test_search_controls() -> None:
    assert search_controls(
        count=50,
        sort=["-date", "code"],
        include=["Observation:encounter", "Observation:performer"],
        revinclude="Provenance:target",
        elements=["id", "code"],
        types=["Condition"],
    ) == [
        ("_count", "50"),
        ("_sort", "-date,code"),
        ("_include", "Observation:encounter"),
        ("_include", "Observation:performer"),
        ("_revinclude", "Provenance:target"),
        ("_elements", "id,code"),
        ("_type", "Condition"),
    ]
    with pytest.raises(InvalidRequestError):
        search_controls(count=-1)


def test_merge_params_concatenates() -> None:
    merged = merge_params({"patient": "1"}, date_range(start="2024"), search_controls(count=10))
    assert merged == [("patient", "1"), ("date", "ge2024"), ("_count", "10")]


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=12), usegmt=True), now=now) == 12.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=12), usegmt=True), now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    rng = random.Random(1)
    delays = [policy.delay(attempt, rng=rng) for attempt in range(10)]
    assert all(0.0 <= d <= min(5.0, 2**i) for i, d in enumerate(delays))
    assert len(set(delays)) > 5  # jitter, not a fixed ladder
    assert policy.delay(3, retry_after=120.0) == 5.0  # Retry-After capped by max_delay
    assert RetryPolicy(base_delay=1.0, jitter=False).delay(2) == 4.0
