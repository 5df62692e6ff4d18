"""What a consultation has cost so far: one visit per question round and the fee of every test ordered.

The ledger is plain data (``to_dict`` / ``from_entries``) so graph state and checkpoints can hold it as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from agents.panel.fees import PricedTest

# SDBench charges one physician visit for each round of questions to the patient.
VISIT_PRICE = 300.0

EntryKind = Literal["visit", "test"]


@dataclass(frozen=True)
class LedgerEntry:
    """One charge: a visit, or one priced test."""

    turn: int
    kind: EntryKind
    name: str
    canonical: str | None
    price: float
    matched: bool


@dataclass
class CostLedger:
    """Charges in the order they were made."""

    entries: list[LedgerEntry] = field(default_factory=list)

    def add_visit(self, turn: int) -> LedgerEntry | None:
        """Charge the visit for a question round; a second call for the same turn is the same round, so free."""
        if any(entry.kind == "visit" and entry.turn == turn for entry in self.entries):
            return None
        entry = LedgerEntry(turn=turn, kind="visit", name="visit", canonical="visit", price=VISIT_PRICE, matched=True)
        self.entries.append(entry)
        return entry

    def add_tests(self, turn: int, priced: Iterable[PricedTest]) -> list[LedgerEntry]:
        """Charge each priced test; unmatched ones at their default price, kept visible through ``unmatched()``."""
        added = [
            LedgerEntry(
                turn=turn, kind="test", name=test.requested, canonical=test.canonical, price=test.price,
                matched=test.matched,
            )
            for test in priced
        ]
        self.entries.extend(added)
        return added

    @property
    def total(self) -> float:
        return sum(entry.price for entry in self.entries)

    @property
    def visits(self) -> int:
        return sum(1 for entry in self.entries if entry.kind == "visit")

    @property
    def tests_total(self) -> float:
        return sum(entry.price for entry in self.entries if entry.kind == "test")

    def unmatched(self) -> list[str]:
        """Requested names the fee table did not know, each once, in order of first request."""
        names: dict[str, None] = {}
        for entry in self.entries:
            if entry.kind == "test" and not entry.matched:
                names.setdefault(entry.name, None)
        return list(names)

    def would_exceed(self, budget: float | None, priced: Sequence[PricedTest]) -> bool:
        """Whether ordering ``priced`` now would take the total past ``budget`` (None: no budget, never)."""
        if budget is None:
            return False
        return self.total + sum(test.price for test in priced) > budget

    def remaining(self, budget: float | None) -> float:
        """Budget left; negative once overspent (so a caller can see by how much); infinite without a budget."""
        if budget is None:
            return float("inf")
        return budget - self.total

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": [asdict(entry) for entry in self.entries],
            "total": self.total,
            "visits": self.visits,
            "tests_total": self.tests_total,
            "unmatched": self.unmatched(),
        }

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, Any]]) -> CostLedger:
        """Rebuild from ``to_dict()["entries"]`` (or any mappings with the entry fields)."""
        return cls(
            [
                LedgerEntry(
                    turn=int(row["turn"]), kind=row["kind"], name=str(row["name"]), canonical=row.get("canonical"),
                    price=float(row["price"]), matched=bool(row["matched"]),
                )
                for row in entries
            ]
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostLedger:
        """Rebuild from ``to_dict()``; the derived totals there are recomputed, not trusted."""
        return cls.from_entries(data.get("entries", ()))
