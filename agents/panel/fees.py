"""Prices for the tests a doctor orders: a fee table read from ``fee_table.json`` and a name matcher over it.

Models and benchmark cases name the same test many ways ("CBC", "Complete_Blood_Count", "full blood count"), so a
request is matched in stages from strict to loose: the exact canonical name, an exact alias, a normalised token key
(case, punctuation, plurals, spellings, abbreviations, noise words and word order removed), and last a conservative
token-overlap rule. What matches nothing is still priced, at ``DEFAULT_TEST_PRICE``, and flagged ``matched=False``
so a report can list it and the table can grow.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Literal

from agents.doctor.agentclinic import requested_test

MatchHow = Literal["exact", "alias", "normalised", "token", "default"]
Contrast = Literal["iodinated", "gadolinium"]

# An unknown test is priced near the median of the table's non-examination entries (about $40 to $60 for this
# table): neither free, which would reward naming tests oddly, nor a windfall. A test checks it stays in that band.
DEFAULT_TEST_PRICE = 50.0
UNMATCHED_CATEGORY = "unmatched"


@dataclass(frozen=True)
class FeeEntry:
    """One row of the fee table."""

    name: str
    category: str
    price: float
    invasive: bool = False
    uses_contrast: Contrast | None = None
    ionising_radiation: bool = False
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PricedTest:
    """A requested test with the table row it matched (or the default price when it matched none)."""

    requested: str
    canonical: str | None
    price: float
    matched: bool
    category: str
    invasive: bool
    uses_contrast: Contrast | None
    ionising_radiation: bool
    how: MatchHow

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------------------
# Normalisation. Applied identically to table names, aliases and requests, so a mapping only has to be consistent,
# not linguistically right ("brain" -> "head" also rewrites "brain natriuretic peptide", harmlessly, on both sides).

# British spellings and ligature remnants, rewritten inside words before tokenising.
_SPELLINGS = (
    ("haem", "hem"),
    ("aemia", "emia"),
    ("oesoph", "esoph"),
    ("oestr", "estr"),
    ("faec", "fec"),
    ("paed", "ped"),
    ("foet", "fet"),
    ("oedema", "edema"),
    ("manoeuvre", "maneuver"),
    ("tumour", "tumor"),
    ("colour", "color"),
    ("sulph", "sulf"),
    ("caesar", "cesar"),
    ("isation", "ization"),
    ("ising", "izing"),
    ("ised", "ized"),
)

# Contrast wording, read before punctuation is lost ("w/o" must not become "w o"). Order matters: "with and
# without" first, then the negatives, then the positives.
_CONTRAST_PHRASES = (
    (
        re.compile(r"\b(?:with\s*(?:and|/)\s*without|w\s*/\s*w\s*/?\s*o|w\s*/\s*wo)\s+(?:iv\s+)?contrast\b"),
        " contrast ",
    ),
    (re.compile(r"\b(?:without|w\s*/\s*o|wo|no|non)[\s-]*(?:iv\s+)?contrast\b|\bnoncontrast\b|\bunenhanced\b"), " "),
    (
        re.compile(r"\b(?:with|w\s*/)\s*(?:iv\s+|intravenous\s+)?(?:contrast|gadolinium)\b|\bcontrast[\s-]enhanced\b"),
        " contrast ",
    ),
)

_PHRASES = (
    (re.compile(r"\bx\s*-?\s*rays?\b"), " xray "),
    (re.compile(r"\bcomputed\s+(?:axial\s+)?tomography\b|\bcat\s+scan\b"), " ct "),
    (re.compile(r"\bmagnetic\s+resonance(?:\s+imaging)?\b"), " mri "),
    (re.compile(r"\blower\s+limbs?\b|\blegs?\b"), " lower extremity "),
    (re.compile(r"\bupper\s+limbs?\b|\barms?\b"), " upper extremity "),
    (re.compile(r"\bstd\b"), " sti "),
)

# One token to one or more tokens. Abbreviations expand to their words, so "CBC with differential" and "complete
# blood count differential" meet; modality and site synonyms collapse to one spelling.
_TOKENS: dict[str, str] = {
    "cbc": "complete blood count",
    "fbc": "complete blood count",
    "bmp": "basic metabolic",
    "cmp": "comprehensive metabolic",
    "lft": "liver function",
    "tft": "thyroid function",
    "ecg": "electrocardiogram",
    "ekg": "electrocardiogram",
    "electrocardiography": "electrocardiogram",
    "cxr": "xray chest",
    "abg": "arterial blood gas",
    "ua": "urinalysis",
    "eeg": "electroencephalogram",
    "electroencephalography": "electroencephalogram",
    "emg": "electromyography",
    "ncs": "nerve conduction",
    "pft": "pulmonary function",
    "tsh": "thyroid stimulating hormone",
    "us": "ultrasound",
    "usg": "ultrasound",
    "sonogram": "ultrasound",
    "sonography": "ultrasound",
    "ultrasonography": "ultrasound",
    "mr": "mri",
    "radiograph": "xray",
    "radiography": "xray",
    "film": "xray",
    "echocardiography": "echocardiogram",
    "angiogram": "angiography",
    "abdominal": "abdomen",
    "thorax": "chest",
    "thoracic": "chest",
    "pelvic": "pelvis",
    "cranial": "head",
    "brain": "head",
    "renal": "kidney",
    "hepatic": "liver",
    "limb": "extremity",
    "xrays": "xray",
}

# Words that carry no identity for pricing: "test"/"level"/"panel" and "serum" are how
# people wrap a name, and "scan" is implied by the modality.
_NOISE = frozenset(
    [
        "test",
        "testing",
        "level",
        "panel",
        "serum",
        "plasma",
        "scan",
        "study",
        "result",
        "report",
        "finding",
        "analysis",
        "of",
        "the",
        "a",
        "an",
        "for",
        "and",
        "to",
        "on",
        "in",
        "by",
        "at",
        "order",
        "please",
        "obtain",
        "request",
        "view",
    ]
)
# Laterality costs the same, but "right heart catheterisation" is not "left heart", so these stay in keys and are
# only ignored when the fuzzy rule measures how much of a request an entry covers.
_LATERALITY = frozenset(["left", "right", "bilateral", "unilateral", "both", "lt", "rt"])

# Imaging modalities and contrast: the fuzzy rule requires these to agree exactly, so "CT head" can never become
# "MRI head" nor "CT abdomen" become "CT abdomen with contrast".
_GUARDED = frozenset(
    [
        "ct",
        "mri",
        "xray",
        "ultrasound",
        "doppler",
        "angiography",
        "pet",
        "spect",
        "fluoroscopy",
        "scintigraphy",
        "mammography",
        "echocardiogram",
        "dexa",
        "venography",
        "endoscopy",
        "contrast",
    ]
)
# Tokens too generic to anchor a fuzzy match on their own ("blood" would pull every blood test into one entry).
_WEAK = (
    frozenset(
        [
            "blood",
            "urine",
            "stool",
            "fluid",
            "count",
            "profile",
            "screen",
            "function",
            "total",
            "body",
            "exam",
            "examination",
            "routine",
            "basic",
            "complete",
            "sign",
            "level",
            "type",
        ]
    )
    | _GUARDED
)


def _singular(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is", "os")):
        return token[:-1]
    return token


def normalise(text: str) -> tuple[str, ...]:
    """The sorted, de-duplicated content tokens of a test name; equal tuples mean "the same test"."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = text.replace("_", " ")
    for old, new in _SPELLINGS:
        text = text.replace(old, new)
    for pattern, replacement in _CONTRAST_PHRASES:
        text = pattern.sub(replacement, text)
    text = re.sub(r"[^a-z0-9]+", " ", text)
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    tokens: set[str] = set()
    for raw in text.split():
        word = _singular(raw)
        for token in _TOKENS.get(word, _TOKENS.get(raw, word)).split():
            if token not in _NOISE:
                tokens.add(token)
    return tuple(sorted(tokens))


# ---------------------------------------------------------------------------------------------------------------


def _entry(row: dict[str, Any]) -> FeeEntry:
    contrast = row.get("uses_contrast")
    if contrast not in (None, "iodinated", "gadolinium"):
        raise ValueError(f"{row['name']}: uses_contrast must be iodinated, gadolinium or null, not {contrast!r}")
    price = float(row["price"])
    if price < 0:
        raise ValueError(f"{row['name']}: negative price {price}")
    return FeeEntry(
        name=row["name"],
        category=row["category"],
        price=price,
        invasive=bool(row.get("invasive", False)),
        uses_contrast=contrast,
        ionising_radiation=bool(row.get("ionising_radiation", False)),
        aliases=tuple(row.get("aliases", ())),
    )


def _fold(text: str) -> str:
    """Case and spacing folded, underscores read as spaces: the form exact and alias matches compare."""
    return " ".join(text.replace("_", " ").casefold().split())


class FeeTable:
    """The fee table with its lookup indexes; build once (``FeeTable.default()``) and share."""

    def __init__(self, entries: Iterable[FeeEntry], note: str = "") -> None:
        self.entries: tuple[FeeEntry, ...] = tuple(entries)
        self.note = note
        self._by_name: dict[str, FeeEntry] = {}
        self._by_alias: dict[str, FeeEntry] = {}
        self._by_key: dict[tuple[str, ...], FeeEntry] = {}
        # (text, first owner, second owner) for every name or alias that two entries claim; the first keeps it.
        self.collisions: list[tuple[str, str, str]] = []
        for entry in self.entries:
            self._claim(self._by_name, _fold(entry.name), entry, entry.name)
        for entry in self.entries:
            for alias in entry.aliases:
                self._claim(self._by_alias, _fold(alias), entry, alias)
        # Canonical names claim their keys before any alias does, so an alias never shadows another test's name.
        for entry in self.entries:
            self._claim(self._by_key, normalise(entry.name), entry, entry.name)
        for entry in self.entries:
            for alias in entry.aliases:
                self._claim(self._by_key, normalise(alias), entry, alias)
        self._fuzzy = [(frozenset(key), entry) for key, entry in self._by_key.items() if set(key) - _WEAK]
        self._cache: dict[str, PricedTest] = {}

    def _claim(self, index: dict[Any, FeeEntry], key: Any, entry: FeeEntry, text: str) -> None:
        if not key:  # an alias made only of noise words ("serum studies") is matched literally or not at all
            return
        owner = index.setdefault(key, entry)
        if owner is not entry and owner.name != entry.name:
            self.collisions.append((text, owner.name, entry.name))

    @classmethod
    def load(cls, path: str | None = None) -> FeeTable:
        """Read a table file; the packaged ``fee_table.json`` when no path is given."""
        if path is None:
            text = files("agents.panel").joinpath("fee_table.json").read_text(encoding="utf-8")
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        data = json.loads(text)
        return cls((_entry(row) for row in data["tests"]), note=data.get("note", ""))

    @staticmethod
    @cache
    def default() -> FeeTable:
        """The packaged table, parsed and indexed once per process."""
        return FeeTable.load()

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, canonical: str) -> FeeEntry | None:
        return self._by_name.get(_fold(canonical))

    def lookup(self, name: str) -> PricedTest:
        """Price one requested test; never raises, unmatched names get ``DEFAULT_TEST_PRICE``."""
        cached = self._cache.get(name)
        if cached is None:
            cached = self._cache[name] = self._lookup(name)
        return cached

    def _lookup(self, name: str) -> PricedTest:
        folded = _fold(name)
        if (entry := self._by_name.get(folded)) is not None:
            return _priced(name, entry, "exact")
        if (entry := self._by_alias.get(folded)) is not None:
            return _priced(name, entry, "alias")
        key = normalise(name)
        if (entry := self._by_key.get(key)) is not None:
            return _priced(name, entry, "normalised")
        if (entry := self._token_match(frozenset(key))) is not None:
            return _priced(name, entry, "token")
        return PricedTest(
            requested=name,
            canonical=None,
            price=DEFAULT_TEST_PRICE,
            matched=False,
            category=UNMATCHED_CATEGORY,
            invasive=False,
            uses_contrast=None,
            ionising_radiation=False,
            how="default",
        )

    def _token_match(self, query: frozenset[str]) -> FeeEntry | None:
        """The entry whose key is wholly inside the request and covers at least half of it.

        Containment only (the request may add words such as a site, "rectal biopsy" -> biopsy, never lose them),
        identical modality and contrast tokens, and an anchor token that is not generic. Ties go to the longer key,
        then the name, so the answer does not depend on table order.
        """
        if not query:
            return None
        guarded = query & _GUARDED
        size = len(query - _LATERALITY)
        best: tuple[tuple[int, str], FeeEntry] | None = None
        for key, entry in self._fuzzy:
            if not key <= query or key & _GUARDED != guarded or 2 * len(key) < size:
                continue
            rank = (-len(key), entry.name)
            if best is None or rank < best[0]:
                best = (rank, entry)
        return best[1] if best else None

    def price_order(self, text: str) -> list[PricedTest]:
        """Every test an order names, priced: at least one entry, even for a name the table does not know. An
        AgentClinic-style order ("Let me check. REQUEST TEST: Serum_Uric_Acid") is priced by the test it names.

        An order none of whose pieces the table knows is one unknown test, charged once: splitting prose at its
        "and"s would charge the default price once per clause."""
        name = requested_test(text)
        priced = self.lookup_order(name)
        return priced if any(test.matched for test in priced) else [self.lookup(name)]

    def lookup_order(self, text: str) -> list[PricedTest]:
        """Split a request naming several tests ("CBC, CMP and lipid panel") and price each once."""
        parts = _split(text)
        found: list[PricedTest] = []
        i = 0
        while i < len(parts):
            # The longest run of parts that is itself a table name wins, so "CT abdomen and pelvis" stays one test.
            for j in range(len(parts) - 1, i, -1):
                joined = text[parts[i][0] : parts[j][1]]
                priced = self.lookup(joined)
                if priced.how in ("exact", "alias", "normalised"):
                    found.append(priced)
                    i = j + 1
                    break
            else:
                found.append(self.lookup(text[parts[i][0] : parts[i][1]]))
                i += 1
        # The same test named twice in one order is done once, so it is charged once.
        seen: set[str] = set()
        unique: list[PricedTest] = []
        for priced in found:
            ident = priced.canonical or " ".join(normalise(priced.requested)) or priced.requested.casefold()
            if ident not in seen:
                seen.add(ident)
                unique.append(priced)
        return unique


def _priced(requested: str, entry: FeeEntry, how: MatchHow) -> PricedTest:
    return PricedTest(
        requested=requested,
        canonical=entry.name,
        price=entry.price,
        matched=True,
        category=entry.category,
        invasive=entry.invasive,
        uses_contrast=entry.uses_contrast,
        ionising_radiation=entry.ionising_radiation,
        how=how,
    )


_SEPARATOR = re.compile(r"\s*(?:[,;\n]|\band\b|&|\+|\bplus\b|\bthen\b|\balso\b)\s*", re.IGNORECASE)
_LIST_MARK = re.compile(r"^(?:[-*\u2022]|\d+[.)])\s+")


def _split(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the non-empty pieces between separators, list markers trimmed off."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in [*_SEPARATOR.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        mark = _LIST_MARK.match(piece.strip())
        offset = start + (len(piece) - len(piece.lstrip())) + (mark.end() if mark else 0)
        stop = start + len(piece.rstrip())
        if text[offset:stop].strip(" .:"):
            spans.append((offset, stop))
        if match:
            start = match.end()
    return spans


def lookup(name: str) -> PricedTest:
    """Price one test against the packaged table."""
    return FeeTable.default().lookup(name)


def lookup_order(text: str) -> list[PricedTest]:
    """Price every test named in an order against the packaged table."""
    return FeeTable.default().lookup_order(text)
