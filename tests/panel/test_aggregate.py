"""Aggregating an ensemble's differentials: probability means and a majority vote on each member's leader."""

from __future__ import annotations

import pytest

from agents.panel import aggregate_differentials

MEMBERS = [
    [("Pneumonia", 0.6), ("Bronchitis", 0.3)],
    [("pneumonia", 0.2), ("Pulmonary embolism", 0.7)],
    [("Bronchitis", 0.5), ("PNEUMONIA ", 0.4)],
]


def test_mean_averages_over_members_with_missing_as_zero_and_names_matched_case_insensitively() -> None:
    result = aggregate_differentials(MEMBERS, "mean")
    assert [name for name, _ in result] == ["Pneumonia", "Bronchitis", "Pulmonary embolism"]
    assert [p for _, p in result] == pytest.approx([0.4, 0.8 / 3, 0.7 / 3])


def test_majority_puts_the_most_frequent_leader_first_with_its_mean() -> None:
    members = [[("A", 0.9), ("B", 0.1)], [("B", 0.6), ("A", 0.4)], [("B", 0.55), ("A", 0.45)]]
    assert aggregate_differentials(members, "mean")[0][0] == "A"
    result = aggregate_differentials(members, "majority")
    assert [name for name, _ in result] == ["B", "A"]
    assert [p for _, p in result] == pytest.approx([1.25 / 3, 1.75 / 3])


def test_a_majority_tie_goes_to_the_higher_mean() -> None:
    members = [[("A", 0.5), ("B", 0.45)], [("B", 0.9), ("A", 0.1)]]
    assert [name for name, _ in aggregate_differentials(members, "majority")] == ["B", "A"]


def test_members_without_a_differential_have_no_vote_and_nothing_is_cut() -> None:
    assert aggregate_differentials([[], [("A", 0.8)]]) == [("A", 0.8)]
    assert aggregate_differentials([[], []], "majority") == []
    many = [[(f"D{i}", 0.1 * i) for i in range(1, 8)]]
    # Seven items stay seven: the can't-miss items kept at a floor sit at the bottom and must not be cut off.
    assert [name for name, _ in aggregate_differentials(many)] == ["D7", "D6", "D5", "D4", "D3", "D2", "D1"]


def test_an_unknown_aggregate_is_refused() -> None:
    with pytest.raises(ValueError, match="aggregate"):
        aggregate_differentials(MEMBERS, "median")  # type: ignore[arg-type]
