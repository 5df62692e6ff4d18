"""One differential from an ensemble's independent ones: probability averaging or a majority vote on the leader.

Names are matched case-insensitively and shown as first written. A member with an empty differential (its
hypothesis failed) has no opinion and is left out, rather than counted as giving every diagnosis zero. The result is
not capped: the members' differentials carry the can't-miss diagnoses kept at a floor beside the model's own five,
and a cap would cut exactly those.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from agents.panel.policy import Aggregate

__all__ = ["aggregate_differentials"]


def _means(members: Sequence[Sequence[tuple[str, float]]]) -> dict[str, tuple[str, float]]:
    """casefolded name -> (name as first written, mean probability over ``members``, missing counted as 0)."""
    names: dict[str, str] = {}
    totals: dict[str, float] = {}
    for differential in members:
        seen: set[str] = set()
        for name, probability in differential:
            key = name.strip().casefold()
            if not key or key in seen:  # a member naming a diagnosis twice votes for it once
                continue
            seen.add(key)
            names.setdefault(key, name.strip())
            totals[key] = totals.get(key, 0.0) + float(probability)
    return {key: (names[key], totals[key] / len(members)) for key in names}


def aggregate_differentials(
    members: Sequence[Sequence[tuple[str, float]]], how: Aggregate = "mean"
) -> list[tuple[str, float]]:
    """The ensemble's differential, most likely first.

    "mean": each diagnosis's probability averaged over the members. "majority": the diagnosis that leads in most
    members comes first (ties go to the higher mean, then to the one named first), with its mean probability; the
    rest follow by mean.
    """
    if how not in ("mean", "majority"):
        raise ValueError(f"aggregate must be mean or majority, not {how!r}")
    voting = [list(d) for d in members if any(name.strip() for name, _ in d)]
    if not voting:
        return []
    means = _means(voting)
    order = list(means)  # first-appearance order breaks ties, so the result does not depend on set ordering
    ranked = sorted(order, key=lambda key: -means[key][1])
    if how == "majority":
        votes = Counter(next(name.strip().casefold() for name, _ in d if name.strip()) for d in voting)
        winner = min(votes, key=lambda key: (-votes[key], -means[key][1], order.index(key)))
        ranked = [winner, *(key for key in ranked if key != winner)]
    return [means[key] for key in ranked]
