"""The cost ledger: visits, test charges, unmatched reporting, budget checks and the JSON round trip."""

from __future__ import annotations

import json

from agents.panel import DEFAULT_TEST_PRICE, VISIT_PRICE, CostLedger, lookup, lookup_order


def test_totals_count_one_visit_per_round_and_every_test() -> None:
    ledger = CostLedger()
    ledger.add_visit(1)
    ledger.add_visit(1)  # the same round again: not a second visit
    ledger.add_visit(2)
    tests = lookup_order("CBC, chest x-ray, quantum flux assay")
    ledger.add_tests(2, tests)
    expected = 2 * VISIT_PRICE + lookup("CBC").price + lookup("chest x-ray").price + DEFAULT_TEST_PRICE
    assert ledger.visits == 2
    assert ledger.total == expected
    assert ledger.unmatched() == ["quantum flux assay"]


def test_budget_checks() -> None:
    ledger = CostLedger()
    ledger.add_visit(1)
    mri = [lookup("MRI brain")]
    assert ledger.remaining(600) == 600 - VISIT_PRICE
    assert not ledger.would_exceed(VISIT_PRICE + mri[0].price, mri)
    assert ledger.would_exceed(VISIT_PRICE + mri[0].price - 1, mri)
    assert not ledger.would_exceed(None, mri)
    assert ledger.remaining(None) == float("inf")
    ledger.add_tests(1, mri)
    assert ledger.remaining(VISIT_PRICE) == -mri[0].price


def test_round_trip_through_json() -> None:
    ledger = CostLedger()
    ledger.add_visit(1)
    ledger.add_tests(1, lookup_order("CBC and zircon assay"))
    data = json.loads(json.dumps(ledger.to_dict()))
    again = CostLedger.from_entries(data["entries"])
    assert again == ledger
    assert CostLedger.from_dict(data).total == data["total"] == ledger.total
    assert data["unmatched"] == ["zircon assay"]
