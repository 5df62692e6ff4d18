"""Word-level text matching shared by the panel's safety rules: normalised words and whole-word containment."""

from __future__ import annotations

import re
from collections.abc import Sequence

_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise_text(text: str) -> str:
    """Lower case, apostrophes dropped ("can't" -> "cant"), everything else that is not a letter or digit a space."""
    return _NON_WORD.sub(" ", text.casefold().replace("'", "").replace("\u2019", "")).strip()


def tokens(text: str) -> list[str]:
    """The normalised text split into words."""
    return normalise_text(text).split()


def contains_words(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    """Whole-word, contiguous: "stemi" is in "acute inferior stemi" but "mi" is not in "mild"."""
    n = len(needle)
    return n > 0 and any(list(haystack[i : i + n]) == list(needle) for i in range(len(haystack) - n + 1))
