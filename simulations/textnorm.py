"""Text normalisation shared by the leak check, the patient's redaction and the judge's exact-match shortcut.

Comparisons are made on a folded form (lower case, accents removed, every run of punctuation, underscores or
whitespace turned into one space), so "Myasthenia-Gravis", "myasthenia_gravis" and "Myasthenia gravis." compare
equal while "gout" is still not found inside "pseudogout".
"""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def fold(text: str) -> str:
    """Lower-case, strip accents and collapse everything that is not a letter or digit into single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", without_marks.lower()).strip()


def contains_phrase(haystack: str, needle: str) -> bool:
    """Whether ``needle`` occurs in ``haystack`` as whole words, after folding both. An empty needle never does."""
    folded = fold(needle)
    if not folded:
        return False
    return f" {folded} " in f" {fold(haystack)} "


def phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    """A case-insensitive pattern matching ``phrase`` in raw text, with any punctuation or spacing between its
    words; None when the phrase has no words."""
    words = [w for w in _NON_WORD.split(phrase) if w]
    if not words:
        return None
    body = r"[\W_]+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE | re.UNICODE)
