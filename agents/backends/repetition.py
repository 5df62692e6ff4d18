"""Detect a generation stuck in a loop (a known MedGemma failure mode) so it can be stopped early.

Pure functions over any sequence (token ids for local models, characters for server replies); the transformers
`StoppingCriteria` that calls them lives in `local_generate.py` so this module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

__all__ = ["RepeatedTail", "find_repeated_tail", "trim_repeated_tail"]

# Blocks shorter than 8 tokens repeat legitimately (list bullets, table rules); longer than 40 is rarely a loop
# and would make the per-token check slower. Three back-to-back copies is where a reply stops being prose.
DEFAULT_MIN_PERIOD = 8
DEFAULT_MAX_PERIOD = 40
DEFAULT_MIN_REPEATS = 3


@dataclass(frozen=True)
class RepeatedTail:
    """The sequence ends with ``repeats`` back-to-back copies of a block of ``period`` items."""

    period: int
    repeats: int

    @property
    def surplus(self) -> int:
        """How many trailing items to drop to keep exactly one copy."""
        return self.period * (self.repeats - 1)


def find_repeated_tail(
    items: Sequence[Hashable],
    *,
    min_period: int = DEFAULT_MIN_PERIOD,
    max_period: int = DEFAULT_MAX_PERIOD,
    min_repeats: int = DEFAULT_MIN_REPEATS,
) -> RepeatedTail | None:
    """Return the shortest block that the end of ``items`` repeats at least ``min_repeats`` times, else None.

    The shortest period wins so that a loop of 8 tokens is not reported as a loop of 16. A loop shorter than
    ``min_period`` is still caught through its multiples (a 3-token loop repeats as a 9-token block).
    """
    if min_period < 1 or max_period < min_period or min_repeats < 2:
        raise ValueError("need 1 <= min_period <= max_period and min_repeats >= 2")
    n = len(items)
    for period in range(min_period, max_period + 1):
        if period * min_repeats > n:
            break
        block = items[n - period :]
        repeats = 1
        # Walk backwards one block at a time while the copies stay identical.
        while (repeats + 1) * period <= n:
            start = n - (repeats + 1) * period
            if items[start : start + period] != block:
                break
            repeats += 1
        if repeats >= min_repeats:
            return RepeatedTail(period=period, repeats=repeats)
    return None


def trim_repeated_tail(items: Sequence[Hashable], tail: RepeatedTail) -> Sequence[Hashable]:
    """Drop the surplus copies found by `find_repeated_tail`, keeping one."""
    return items[: len(items) - tail.surplus]
