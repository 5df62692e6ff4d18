"""Pure builders for FHIR search parameters.

A search is a list of ``(name, value)`` pairs, not a dict, because FHIR repeats names to AND conditions
(``date=ge2024-01-01&date=le2024-12-31``) while a comma inside one value ORs them. Everything here is a pure
function over strings, so it is unit-tested without a server::

    params = merge_params(
        {"patient": "123", "category": "laboratory"},
        date_range("date", start=date(2024, 1, 1), end=date(2024, 12, 31)),
        search_controls(count=50, sort=["-date"], include=["Observation:encounter"]),
    )
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TypeAlias

from .errors import InvalidRequestError

__all__ = [
    "SearchParams",
    "date_range",
    "fhir_date",
    "merge_params",
    "normalise_params",
    "search_controls",
]

SearchParams: TypeAlias = Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str]]
"""What `FhirClient.search` accepts: a mapping (a sequence value repeats the name) or a list of pairs."""

# A parameter name: letters, digits, '-', '_', '.', with modifiers and chains (``code:text``, ``subject:Patient.name``).
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.:]*$")


def _value(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return fhir_date(value)
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidRequestError(f"search parameter {name!r} has a value of type {type(value).__name__}")


def normalise_params(params: SearchParams | None) -> list[tuple[str, str]]:
    """Turn any accepted form into a list of ``(name, value)`` pairs, keeping order and repeats."""
    if params is None:
        return []
    pairs: list[tuple[str, object]] = []
    if isinstance(params, Mapping):
        for name, value in params.items():
            if isinstance(value, str | bytes) or not isinstance(value, Iterable):
                pairs.append((name, value))
            else:
                pairs.extend((name, v) for v in value)
    elif isinstance(params, str | bytes):
        raise InvalidRequestError("search parameters must be a mapping or (name, value) pairs, not a string")
    else:
        for item in params:
            if not (isinstance(item, tuple | list) and len(item) == 2):
                raise InvalidRequestError(f"search parameter {item!r} is not a (name, value) pair")
            pairs.append((item[0], item[1]))
    out: list[tuple[str, str]] = []
    for name, value in pairs:
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidRequestError(f"search parameter name {name!r} is not a FHIR parameter name")
        out.append((name, _value(name, value)))
    return out


def merge_params(*parts: SearchParams | None) -> list[tuple[str, str]]:
    """Concatenate several parameter sets (repeats kept: FHIR ANDs repeated names)."""
    merged: list[tuple[str, str]] = []
    for part in parts:
        merged.extend(normalise_params(part))
    return merged


def fhir_date(value: date | datetime | str) -> str:
    """A FHIR date or dateTime string; naive datetimes are written without an offset (server local time)."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def date_range(
    param: str = "date",
    *,
    start: date | datetime | str | None = None,
    end: date | datetime | str | None = None,
    inclusive: bool = True,
) -> list[tuple[str, str]]:
    """``date=ge<start>&date=le<end>`` (``gt``/``lt`` when not inclusive); either end may be open."""
    low, high = ("ge", "le") if inclusive else ("gt", "lt")
    pairs: list[tuple[str, str]] = []
    if start is not None:
        pairs.append((param, low + fhir_date(start)))
    if end is not None:
        pairs.append((param, high + fhir_date(end)))
    return normalise_params(pairs)


def _joined(name: str, values: str | Sequence[str]) -> str:
    items = [values] if isinstance(values, str) else list(values)
    if not items or not all(isinstance(v, str) and v for v in items):
        raise InvalidRequestError(f"{name} needs one or more non-empty strings, got {values!r}")
    return ",".join(items)


def search_controls(
    *,
    count: int | None = None,
    sort: str | Sequence[str] | None = None,
    include: Sequence[str] = (),
    revinclude: Sequence[str] = (),
    elements: Sequence[str] = (),
    summary: str | None = None,
    total: str | None = None,
    types: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """The result-shaping parameters: ``_count``, ``_sort`` (``-date`` descends), ``_include``, ``_revinclude``,
    ``_elements``, ``_summary``, ``_total`` and ``_type``. Each include is its own pair, as servers expect."""
    pairs: list[tuple[str, str]] = []
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidRequestError(f"_count must be a non-negative integer, got {count!r}")
        pairs.append(("_count", str(count)))
    if sort:
        pairs.append(("_sort", _joined("_sort", sort)))
    pairs.extend(("_include", v) for v in ([include] if isinstance(include, str) else include))
    pairs.extend(("_revinclude", v) for v in ([revinclude] if isinstance(revinclude, str) else revinclude))
    if elements:
        pairs.append(("_elements", _joined("_elements", elements)))
    if summary is not None:
        pairs.append(("_summary", summary))
    if total is not None:
        pairs.append(("_total", total))
    if types:
        pairs.append(("_type", _joined("_type", types)))
    return normalise_params(pairs)
