"""Calibration scores of the differential against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from simulations.bench.calibration import (
    CalibrationCase,
    ReliabilityBin,
    brier_score,
    case_from_matches,
    expected_calibration_error,
    log_loss,
    reliability_bins,
    summarise_calibration,
    top1_brier,
    top_k_accuracy,
)

# 0.7 on the right answer, 0.2 on a wrong one, 0.1 left to "other".
RIGHT_AT_70 = CalibrationCase([("A", 0.7), ("B", 0.2)], 0)
# A tie: the first listed is the top item, and it is wrong.
TIE_SECOND_RIGHT = CalibrationCase([("C", 0.5), ("D", 0.5)], 1)
# The answer is not listed, so "other" (0.1) was the right class.
MISSING = CalibrationCase([("A", 0.6), ("B", 0.3)], None)
# Claims 1.2 in total: read as 2/3 and 1/3, nothing left to "other".
OVER_ONE = CalibrationCase([("A", 0.8), ("B", 0.4)], 0)


def test_single_case_known_values() -> None:
    assert brier_score([RIGHT_AT_70]) == pytest.approx(0.3**2 + 0.2**2 + 0.1**2)
    assert brier_score([RIGHT_AT_70]) == pytest.approx(0.14)
    assert log_loss([RIGHT_AT_70]) == pytest.approx(-math.log(0.7))
    assert top1_brier([RIGHT_AT_70]) == pytest.approx(0.09)


def test_two_cases_are_averaged() -> None:
    cases = [RIGHT_AT_70, TIE_SECOND_RIGHT]
    # second case: 0.5^2 + 0.5^2 + 0^2 = 0.5
    assert brier_score(cases) == pytest.approx((0.14 + 0.5) / 2)
    assert log_loss(cases) == pytest.approx((-math.log(0.7) - math.log(0.5)) / 2)
    # second case's top item is C at 0.5 and wrong: 0.25
    assert top1_brier(cases) == pytest.approx((0.09 + 0.25) / 2)


def test_missing_answer_scores_the_other_class() -> None:
    assert brier_score([MISSING]) == pytest.approx(0.6**2 + 0.3**2 + 0.9**2)
    assert log_loss([MISSING]) == pytest.approx(-math.log(0.1))
    assert top1_brier([MISSING]) == pytest.approx(0.36)
    assert top_k_accuracy([MISSING], 3) == 0.0


def test_probabilities_over_one_are_renormalised() -> None:
    assert brier_score([OVER_ONE]) == pytest.approx((1 / 3) ** 2 + (1 / 3) ** 2)
    assert log_loss([OVER_ONE]) == pytest.approx(-math.log(2 / 3))
    assert top1_brier([OVER_ONE]) == pytest.approx((1 / 3) ** 2)
    # nothing left for "other", so a missing answer costs the clipped maximum
    over_and_missing = CalibrationCase([("A", 0.6), ("B", 0.6)], None)
    assert brier_score([over_and_missing]) == pytest.approx(0.25 + 0.25 + 1.0)
    assert log_loss([over_and_missing]) == pytest.approx(-math.log(1e-6))


def test_perfect_and_worst_predictions() -> None:
    perfect = CalibrationCase([("A", 1.0)], 0)
    worst = CalibrationCase([("A", 1.0)], None)
    assert brier_score([perfect]) == 0.0
    assert log_loss([perfect]) == 0.0
    assert expected_calibration_error([perfect]) == 0.0
    assert brier_score([worst]) == pytest.approx(2.0)
    assert log_loss([worst], eps=0.01) == pytest.approx(-math.log(0.01))


def test_empty_differential_puts_everything_on_other() -> None:
    nothing_listed = CalibrationCase([], None)
    assert brier_score([nothing_listed]) == 0.0
    assert log_loss([nothing_listed]) == 0.0
    # it named nothing, so its top item claimed 0 and was not right
    assert top1_brier([nothing_listed]) == 0.0
    assert reliability_bins([nothing_listed])[0].count == 1
    assert top_k_accuracy([nothing_listed], 1) == 0.0


def _at(p: float, right: bool) -> CalibrationCase:
    # A is the top item at p; B stays below it and inside what is left, so nothing is rescaled.
    return CalibrationCase([("A", p), ("B", round(min(p, 1 - p) / 2, 10))], 0 if right else 1)


def test_reliability_bins_and_ece() -> None:
    # four at 0.8 with three right, two at 0.3 with one right
    cases = [_at(0.8, True)] * 3 + [_at(0.8, False), _at(0.3, True), _at(0.3, False)]
    bins = reliability_bins(cases, n_bins=10)
    assert len(bins) == 10
    assert bins[8] == ReliabilityBin(lower=0.8, upper=0.9, count=4, mean_predicted=pytest.approx(0.8),
                                     observed=0.75)
    assert bins[3].count == 2
    assert bins[3].mean_predicted == pytest.approx(0.3)
    assert bins[3].observed == 0.5
    for i in set(range(10)) - {3, 8}:
        assert bins[i].count == 0
        assert bins[i].mean_predicted is None
        assert bins[i].observed is None
    assert [(b.lower, b.upper) for b in bins[:2]] == [(0.0, 0.1), (0.1, 0.2)]
    # 4/6 of the cases off by 0.05, 2/6 off by 0.2
    assert expected_calibration_error(cases, n_bins=10) == pytest.approx(4 / 6 * 0.05 + 2 / 6 * 0.2)
    assert expected_calibration_error(cases, n_bins=10) == pytest.approx(0.1)


def test_bin_edges_go_up_and_one_goes_to_the_last_bin() -> None:
    assert reliability_bins([_at(0.5, True)], n_bins=2)[1].count == 1
    assert reliability_bins([_at(1.0, True)], n_bins=10)[9].count == 1
    # 0.29 * 100 is just under 29 in floating point; it still belongs to [0.29, 0.30)
    assert reliability_bins([_at(0.29, True)], n_bins=100)[29].count == 1


def test_top_k_accuracy() -> None:
    fourth = CalibrationCase([("A", 0.4), ("B", 0.3), ("C", 0.2), ("D", 0.1)], 3)
    third = CalibrationCase([("A", 0.4), ("B", 0.3), ("C", 0.2)], 2)
    cases = [RIGHT_AT_70, third, fourth, MISSING]
    assert top_k_accuracy(cases, 1) == 0.25
    assert top_k_accuracy(cases, 3) == 0.5
    assert top_k_accuracy(cases, 4) == 0.75


def test_an_unsorted_differential_is_ranked_by_probability() -> None:
    unsorted = CalibrationCase([("B", 0.2), ("A", 0.7)], 1)
    assert top_k_accuracy([unsorted], 1) == 1.0
    assert top1_brier([unsorted]) == pytest.approx(0.09)
    assert brier_score([unsorted]) == pytest.approx(0.14)
    assert reliability_bins([unsorted])[7].observed == 1.0


def test_case_from_matches() -> None:
    items = [("Pneumonia", 0.5), ("Community-acquired pneumonia", 0.3), ("Asthma", 0.1)]
    assert case_from_matches(items, [False, True, True]).correct_index == 1
    assert case_from_matches(items, [False, False, False]).correct_index is None
    with pytest.raises(ValueError, match="match flags"):
        case_from_matches(items, [True, False])


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_bad_probabilities_are_refused(p: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        CalibrationCase([("A", p)], 0)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="correct_index"):
        CalibrationCase([("A", 0.5)], 1)
    with pytest.raises(ValueError, match="k must"):
        top_k_accuracy([RIGHT_AT_70], 0)
    with pytest.raises(ValueError, match="n_bins"):
        reliability_bins([RIGHT_AT_70], n_bins=0)
    with pytest.raises(ValueError, match="eps"):
        log_loss([RIGHT_AT_70], eps=0.0)


def test_empty_input_gives_none_not_a_division_by_zero() -> None:
    summary = summarise_calibration([])
    assert summary.n == 0
    assert (summary.brier, summary.top1_brier, summary.log_loss, summary.ece) == (None, None, None, None)
    assert (summary.top1_accuracy, summary.top3_accuracy) == (None, None)
    assert len(summary.bins) == 10
    assert all(b.count == 0 and b.observed is None for b in summary.bins)


def test_summary_gathers_every_score() -> None:
    cases = [RIGHT_AT_70, TIE_SECOND_RIGHT, MISSING, OVER_ONE]
    summary = summarise_calibration(cases, n_bins=5)
    assert summary.n == 4
    assert summary.brier == pytest.approx((0.14 + 0.5 + 1.26 + 2 / 9) / 4)
    assert summary.log_loss == pytest.approx(-(math.log(0.7) + math.log(0.5) + math.log(0.1) + math.log(2 / 3)) / 4)
    assert summary.top1_brier == pytest.approx((0.09 + 0.25 + 0.36 + 1 / 9) / 4)
    assert summary.top1_accuracy == 0.5
    assert summary.top3_accuracy == 0.75
    assert [b.count for b in summary.bins] == [0, 0, 1, 3, 0]
    # bin [0.6, 0.8): 0.7 right, 0.6 wrong, 2/3 right -> mean 59/90, observed 60/90; bin [0.4, 0.6): 0.5 wrong
    assert summary.ece == pytest.approx(3 / 4 * (1 / 90) + 1 / 4 * 0.5)
