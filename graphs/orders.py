"""The consultation's gate on orders: price them, check them against what is known, keep the budget, keep the ledger.

Whoever decides (the single doctor or the panel), every test goes through ``review_order`` before the environment
sees it: the fee table prices it, the contraindication rules check it against the patient's facts (from the
record), and the ledger says whether the budget allows it. A blocked or unaffordable order is refused and recorded,
never charged. The panel's consensus avoids such orders in the first place; this gate is what guarantees it.

Cost follows SDBench: one visit ($300) per round of questions, where consecutive questions form one round, and
each test its table price (an unmatched name the default price, listed as unmatched).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agents.panel import (
    VISIT_PRICE,
    Contraindication,
    CostLedger,
    FeeTable,
    PatientFacts,
    PricedTest,
    check_order,
    order_traits,
)
from graphs.state import CostEntry, DialogueEntry

# Actions a doctor takes that the environment (or a lookup) answers; a question round ends at any but "ask".
_ANSWERED = ("ask", "test", "record", "image")


@dataclass(frozen=True)
class OrderReview:
    """What the gate made of one test order."""

    priced: list[PricedTest]
    blocks: list[Contraindication] = field(default_factory=list)
    warnings: list[Contraindication] = field(default_factory=list)
    over_budget: bool = False
    budget_left: float | None = None

    @property
    def price(self) -> float:
        return sum(test.price for test in self.priced)

    @property
    def allowed(self) -> bool:
        return not self.blocks and not self.over_budget

    def invasive(self) -> list[str]:
        return [test.canonical or test.requested for test in self.priced if test.invasive]

    def refusal(self, test: str) -> str:
        """The text the doctor is told when the order is refused."""
        if self.blocks:
            reasons = "; ".join(block.reason for block in self.blocks)
            return f"Order blocked: {test}. {reasons}"
        left = f"${self.budget_left:,.0f}" if self.budget_left is not None else "nothing"
        return f"Order refused: {test} costs ${self.price:,.0f} and only {left} of the budget is left."

    def reasons(self) -> list[dict[str, Any]]:
        if self.blocks:
            return [{**asdict(block), "sources": list(block.sources)} for block in self.blocks]
        return [{"rule": "budget", "severity": "block", "sources": [],
                 "reason": f"${self.price:,.0f} with ${self.budget_left or 0:,.0f} of the budget left"}]


def facts_from(data: Mapping[str, Any] | None) -> PatientFacts | None:
    """The patient facts saved in state (``PatientFacts`` fields as data), or None without a record."""
    if not data:
        return None
    fields = {"conditions", "allergies", "medications", "devices", "labs", "pregnant", "pregnancy_source"}
    return PatientFacts(**{k: v for k, v in data.items() if k in fields})


def price_order(text: str, fees: FeeTable | None = None) -> list[PricedTest]:
    """Every test named in an order, priced by ``fees`` (the packaged table by default)."""
    return (fees or FeeTable.default()).price_order(text)


def ledger_of(costs: Sequence[Mapping[str, Any]] | None) -> CostLedger:
    return CostLedger.from_entries(costs or [])


def review_order(
    text: str,
    *,
    facts: PatientFacts | None,
    costs: Sequence[Mapping[str, Any]] | None,
    budget: float | None,
    fees: FeeTable | None = None,
) -> OrderReview:
    """Price ``text``, check each test against ``facts`` and the whole order against ``budget``."""
    priced = price_order(text, fees)
    found = [c for test in priced for c in check_order(order_traits(test), facts)] if facts is not None else []
    ledger = ledger_of(costs)
    return OrderReview(
        priced=priced,
        blocks=[c for c in found if c.severity == "block"],
        warnings=[c for c in found if c.severity != "block"],
        over_budget=ledger.would_exceed(budget, priced),
        budget_left=None if budget is None else ledger.remaining(budget),
    )


def answered_actions(dialogue: Sequence[Mapping[str, Any]]) -> list[str]:
    """The doctor's actions that something answered (questions, tests, lookups, image reads), in order."""
    return [e["action"] for e in dialogue if e["role"] == "doctor" and e.get("action") in _ANSWERED]


def starts_question_round(dialogue: Sequence[DialogueEntry]) -> bool:
    """Whether the doctor's latest question opens a new round: the action answered before it was not a question."""
    actions = answered_actions(dialogue)
    return len(actions) < 2 or actions[-2] != "ask"


def visit_affordable(costs: Sequence[Mapping[str, Any]] | None, budget: float | None) -> bool:
    return budget is None or ledger_of(costs).total + VISIT_PRICE <= budget


def visit_charge(turn: int) -> CostEntry:
    return {"turn": turn, "kind": "visit", "name": "visit", "canonical": "visit", "price": VISIT_PRICE,
            "matched": True}


def charges_for_tests(turn: int, priced: Sequence[PricedTest]) -> list[CostEntry]:
    return [{"turn": turn, "kind": "test", "name": test.requested, "canonical": test.canonical, "price": test.price,
             "matched": test.matched} for test in priced]

