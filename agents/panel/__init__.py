"""The diagnostic panel's pricing: a fee table for tests and a cost ledger for a consultation."""

from agents.panel.fees import DEFAULT_TEST_PRICE, FeeEntry, FeeTable, PricedTest, lookup, lookup_order, normalise
from agents.panel.ledger import VISIT_PRICE, CostLedger, LedgerEntry

__all__ = [
    "DEFAULT_TEST_PRICE",
    "VISIT_PRICE",
    "CostLedger",
    "FeeEntry",
    "FeeTable",
    "LedgerEntry",
    "PricedTest",
    "lookup",
    "lookup_order",
    "normalise",
]
