"""The values the FHIR client hands out: one `Resource` (raw JSON plus what validation said) and a `SearchResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Resource", "SearchResult"]


@dataclass(frozen=True)
class Resource:
    """One FHIR resource exactly as the server sent it, with its identity and validation verdict.

    An invalid resource is still a `Resource` (``valid=False`` and ``problem`` says why): callers decide what to
    do with it, nothing is dropped.
    """

    raw: dict[str, Any] = field(repr=False, hash=False)
    resource_type: str
    id: str | None
    version: str | None  # meta.versionId
    valid: bool
    problem: str | None  # why validation failed (short), None when valid or not validated
    search_mode: str | None = None  # "match" / "include" / None

    @property
    def reference(self) -> str:
        """``Type/id`` (just ``Type`` for a resource without an id)."""
        return f"{self.resource_type}/{self.id}" if self.id else self.resource_type

    @property
    def versioned_reference(self) -> str:
        """``Type/id/_history/version``, or ``Type/id`` when the server gave no version."""
        return f"{self.reference}/_history/{self.version}" if self.id and self.version else self.reference


@dataclass
class SearchResult:
    """All pages of one search (or one `everything` call), flattened.

    ``resources`` holds the matches (``search.mode`` match or unmarked) and ``included`` what ``_include`` /
    ``_revinclude`` pulled in. ``truncated`` is True when paging stopped early (``max_pages``,
    ``max_resources`` or a `next` link seen before); ``warnings`` says why, plus any server warnings.
    """

    resources: list[Resource] = field(default_factory=list)
    included: list[Resource] = field(default_factory=list)
    total: int | None = None
    pages: int = 0
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)

    def all(self) -> list[Resource]:
        """Matches followed by included resources."""
        return [*self.resources, *self.included]

    def raw(self) -> list[dict[str, Any]]:
        """The raw JSON of every resource (matches first), for code that works on plain dicts."""
        return [r.raw for r in self.all()]
