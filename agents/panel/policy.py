"""How a diagnostic panel is run: its variant, budget, ensemble size, aggregation and commit threshold.

The five variants trace MAI-DxO's accuracy-cost curve (``../shared/reference/panel.md``): "instant" diagnoses on the
first turn, "questions" never orders tests, "budgeted" never spends past ``budget``, "no-budget" is the full panel,
and "ensemble" runs ``members`` independent panels and aggregates their differentials. ``PanelPolicy.build`` is the
validating constructor the command line and the benchmark use; ``to_dict`` / ``from_dict`` carry a policy through
graph input and checkpoints as plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast, get_args

__all__ = ["AGGREGATES", "DEFAULT_ENSEMBLE_MEMBERS", "VARIANTS", "Aggregate", "PanelPolicy", "Variant"]

Variant = Literal["no-budget", "budgeted", "instant", "questions", "ensemble"]
VARIANTS: tuple[str, ...] = get_args(Variant)
Aggregate = Literal["mean", "majority"]
AGGREGATES: tuple[str, ...] = get_args(Aggregate)

# MAI-DxO's ensemble; three is the smallest count where a majority vote means something.
DEFAULT_ENSEMBLE_MEMBERS = 3


@dataclass(frozen=True)
class PanelPolicy:
    """One panel configuration. Build it with ``PanelPolicy.build`` to have the fields checked together."""

    variant: Variant = "no-budget"
    budget: float | None = None  # USD; required (> 0) for "budgeted", None for every other variant
    members: int = 1  # > 1 only for "ensemble"
    aggregate: Aggregate = "mean"
    commit_threshold: float = 0.7  # top probability at which the panel may diagnose

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PanelPolicy:
        """Rebuild from ``to_dict()`` (validated again: state may have been edited by hand)."""
        return cls.build(
            str(data.get("variant", "no-budget")),
            budget=data.get("budget"),
            members=data.get("members"),
            aggregate=str(data.get("aggregate", "mean")),
            commit_threshold=float(data.get("commit_threshold", 0.7)),
        )

    @classmethod
    def build(
        cls,
        variant: str,
        *,
        budget: float | None = None,
        members: int | None = None,
        aggregate: str = "mean",
        commit_threshold: float = 0.7,
    ) -> PanelPolicy:
        """A checked policy; a ``ValueError`` names the field at fault.

        A budget given to a variant other than "budgeted" is ignored rather than refused: the command line's
        ``--budget`` also caps the consultation as a whole, which is not the panel's business.
        """
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, not {aggregate!r}")
        if not 0.0 < commit_threshold <= 1.0:
            raise ValueError(f"commit_threshold must be in (0, 1], not {commit_threshold!r}")
        budget = _budget(budget) if variant == "budgeted" else None
        if variant == "ensemble":
            members = DEFAULT_ENSEMBLE_MEMBERS if members is None else members
            if isinstance(members, bool) or not isinstance(members, int) or members < 2:
                raise ValueError(f"members must be an integer of at least 2 for the ensemble variant, not {members!r}")
        elif members not in (None, 1):
            raise ValueError(f"members must be 1 for the {variant} variant (only ensemble has several), not {members!r}")
        else:
            members = 1
        return cls(
            variant=cast(Variant, variant),
            budget=budget,
            members=members,
            aggregate=cast(Aggregate, aggregate),
            commit_threshold=float(commit_threshold),
        )


def _budget(value: Any) -> float:
    amount = None if isinstance(value, bool) else value
    try:
        amount = float(amount)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        amount = None
    if amount is None or not amount > 0 or amount == float("inf"):
        raise ValueError(f"budget must be a positive amount (USD) for the budgeted variant, not {value!r}")
    return amount
