"""The diagnostic panel: a fee table for tests and a cost ledger for a consultation, can't-miss diagnoses kept in
the differential until excluded, and contraindication checks of ordered tests against patient facts."""

from agents.panel.cant_miss import (
    CantMiss,
    CantMissTable,
    cant_miss_for,
    complaints_in,
    excluding_finding,
    keep_in_differential,
    load_cant_miss_table,
    open_cant_miss,
    parse_cant_miss_table,
)
from agents.panel.contraindications import (
    Contraindication,
    Contrast,
    Fact,
    Lab,
    PatientFacts,
    Severity,
    TestTraits,
    check_order,
    creatinine_mg_dl,
    is_blocked,
    platelets_per_nl,
)
from agents.panel.fees import DEFAULT_TEST_PRICE, FeeEntry, FeeTable, PricedTest, lookup, lookup_order, normalise
from agents.panel.ledger import VISIT_PRICE, CostLedger, LedgerEntry

__all__ = [
    "DEFAULT_TEST_PRICE",
    "VISIT_PRICE",
    "CantMiss",
    "CantMissTable",
    "Contraindication",
    "Contrast",
    "CostLedger",
    "Fact",
    "FeeEntry",
    "FeeTable",
    "Lab",
    "LedgerEntry",
    "PatientFacts",
    "PricedTest",
    "Severity",
    "TestTraits",
    "cant_miss_for",
    "check_order",
    "complaints_in",
    "creatinine_mg_dl",
    "excluding_finding",
    "is_blocked",
    "keep_in_differential",
    "load_cant_miss_table",
    "lookup",
    "lookup_order",
    "normalise",
    "open_cant_miss",
    "parse_cant_miss_table",
    "platelets_per_nl",
]
