"""Date phrases resolved against a stated now: the window that filters fetches and is told to the model."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from agents.navigator import DateWindow, describe_window, resolve_window

NOW = date(2024, 5, 31)
D = date


@pytest.mark.parametrize(
    ("question", "start", "end", "latest"),
    [
        ("What is the latest HbA1c?", None, NOW, True),
        ("Most recent blood pressure", None, NOW, True),
        ("When was her last visit?", None, NOW, True),
        ("Which medications does she take?", None, NOW, False),
        ("Labs since 2021", D(2021, 1, 1), NOW, False),
        ("Any admissions since March 2022?", D(2022, 3, 1), NOW, False),
        ("since feb. 2023", D(2023, 2, 1), NOW, False),
        ("weight since 2022-07-15", D(2022, 7, 15), NOW, False),
        ("results after 2020", D(2021, 1, 1), NOW, False),
        ("in the last 6 months", D(2023, 11, 30), NOW, False),  # 31 May - 6 months: clamped to 30 Nov
        ("in the last 2 years", D(2022, 5, 31), NOW, False),
        ("over the past three weeks", D(2024, 5, 10), NOW, False),
        ("in the past year", D(2023, 5, 31), NOW, False),
        ("most recent A1c in the last year", D(2023, 5, 31), NOW, True),
        ("Conditions diagnosed last year", D(2023, 1, 1), D(2023, 12, 31), False),
        ("labs this year", D(2024, 1, 1), NOW, False),
        ("last month", D(2024, 4, 1), D(2024, 4, 30), False),
        ("Vaccines before 2020", None, D(2019, 12, 31), False),
        ("until March 2022", None, D(2022, 3, 31), False),
        ("What happened in 2019?", D(2019, 1, 1), D(2019, 12, 31), False),
        ("in September 2021", D(2021, 9, 1), D(2021, 9, 30), False),
        ("between 2018 and 2020", D(2018, 1, 1), D(2020, 12, 31), False),
        ("from 2020-01 to 2020-06", D(2020, 1, 1), D(2020, 6, 30), False),
        ("What was measured on 2021-03-04?", D(2021, 3, 4), D(2021, 3, 4), False),
        ("the 2021-03-04 result", D(2021, 3, 4), D(2021, 3, 4), False),
        ("anything today", NOW, NOW, False),
        ("since 2030", D(2030, 1, 1), NOW, False),  # a future start: an empty window, not a crash
    ],
)
def test_resolve_window(question: str, start: date | None, end: date | None, latest: bool) -> None:
    window = resolve_window(question, NOW)
    assert (window.start, window.end, window.latest) == (start, end, latest)


def test_leap_day_and_datetime_now() -> None:
    window = resolve_window("in the last year", datetime(2024, 2, 29, 15, 0))
    assert (window.start, window.end) == (date(2023, 2, 28), date(2024, 2, 29))


def test_default_now_is_today() -> None:
    assert resolve_window("since 2021").end == date.today()


def test_phrase_is_kept_and_window_is_empty_in_the_future() -> None:
    window = resolve_window("labs since 2030", NOW)
    assert window.phrase == "since 2030"
    assert window.empty and window.bounded
    assert "after today" in describe_window(window, NOW)


def test_no_phrase_means_unbounded_start() -> None:
    window = resolve_window("list her allergies", NOW)
    assert window == DateWindow(start=None, end=NOW, latest=False, phrase=None)
    assert not window.bounded


def test_describe_window_states_today_and_bounds() -> None:
    text = describe_window(resolve_window("latest HbA1c since March 2022", NOW), NOW)
    assert text.startswith("Today is 2024-05-31;")
    assert "2022-03-01 to 2024-05-31" in text
    assert "most recent" in text
