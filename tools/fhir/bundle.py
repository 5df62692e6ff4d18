"""Reading searchset Bundles and following their `next` links, within bounds.

`read_page` is pure: it splits one Bundle into matches, includes and server messages (``search.mode`` outcome
entries) and finds the `next` link. `follow_pages` drives the paging loop through a fetch callable, stopping at
``max_pages`` or ``max_resources`` or on a `next` link it has already seen (a cycle), and records why in the
result's warnings rather than looping or silently stopping. Every `next` link is confined to the base URL before
it is fetched, so a link to another host raises `UrlOutsideBaseError` and nothing is requested from it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import httpx

from .errors import NotFhirResponseError
from .redaction import redact_url
from .resource import SearchResult
from .responses import parse_outcome
from .urls import BaseUrl, confine
from .validation import to_resource

__all__ = ["BundlePage", "follow_pages", "read_page"]

logger = logging.getLogger(__name__)

Fetch = Callable[[str, Sequence[tuple[str, str]] | None], Awaitable[dict[str, Any]]]


@dataclass
class BundlePage:
    """One Bundle, split: matching resources, included resources, server messages, the `next` link, the total."""

    matches: list[dict[str, Any]] = field(default_factory=list)
    includes: list[dict[str, Any]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    next_url: str | None = None
    total: int | None = None


def read_page(bundle: dict[str, Any]) -> BundlePage:
    """Split one searchset Bundle (an OperationOutcome of warnings reads as an empty page with messages)."""
    page = BundlePage()
    if bundle.get("resourceType") == "OperationOutcome":
        page.messages.extend(issue.render() for issue in parse_outcome(bundle))
        return page
    total = bundle.get("total")
    page.total = total if isinstance(total, int) and not isinstance(total, bool) else None
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            page.next_url = link["url"]
            break
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue  # history/delete entries carry no resource
        search = entry.get("search") if isinstance(entry.get("search"), dict) else {}
        mode = search.get("mode")
        if mode == "outcome" or (mode is None and resource.get("resourceType") == "OperationOutcome"):
            page.messages.extend(issue.render() for issue in parse_outcome(resource))
        elif mode == "include":
            page.includes.append(resource)
        else:
            page.matches.append(resource)
    return page


def _key(url: str) -> str:
    """A comparison key for URLs that differ only in percent-encoding."""
    return unquote_plus(str(httpx.URL(url)))


def _warn(result: SearchResult, message: str, *, level: int = logging.WARNING) -> None:
    logger.log(level, "%s", message)
    result.warnings.append(message)


async def follow_pages(
    fetch: Fetch,
    base: BaseUrl,
    url: str,
    params: Sequence[tuple[str, str]] | None,
    *,
    max_pages: int,
    max_resources: int,
    validate: bool,
) -> SearchResult:
    """Fetch ``url`` and every `next` page after it, within the bounds, as one `SearchResult`."""
    result = SearchResult()
    first = httpx.URL(confine(base, url))
    seen = {_key(str(first.copy_merge_params(list(params)) if params else first))}
    next_url: str | None = url
    next_params = params
    invalid: list[str] = []
    while next_url is not None:
        bundle = await fetch(next_url, next_params)
        if bundle.get("resourceType") not in ("Bundle", "OperationOutcome"):
            shown = redact_url(next_url)
            raise NotFhirResponseError(
                f"GET {shown} answered with a {bundle.get('resourceType')} where a Bundle was expected",
                method="GET",
                url=shown,
                status=200,
                content_type="application/fhir+json",
                snippet="",
            )
        page = read_page(bundle)
        result.pages += 1
        result.total = page.total if page.total is not None else result.total
        result.warnings.extend(page.messages)
        for raw, mode in [*((r, "match") for r in page.matches), *((r, "include") for r in page.includes)]:
            if len(result.resources) + len(result.included) >= max_resources:
                result.truncated = True
                break
            resource = to_resource(raw, validate=validate, search_mode=mode)
            (result.resources if mode == "match" else result.included).append(resource)
            if not resource.valid:
                invalid.append(resource.reference)
        next_url, next_params = page.next_url, None
        if result.truncated:
            # The caller chose the bound (a `_count`-sized answer, a --limit): worth a note, not a log warning.
            _warn(result, f"stopped at max_resources={max_resources}; more results were not fetched", level=logging.INFO)
            break
        if next_url is None:
            break
        key = _key(confine(base, next_url))  # raises UrlOutsideBaseError before anything is fetched from it
        if key in seen:
            result.truncated = True
            _warn(result, f"stopped paging: the next link {redact_url(next_url)} was already fetched (a cycle)")
            break
        seen.add(key)
        if result.pages >= max_pages:
            result.truncated = True
            _warn(result, f"stopped after max_pages={max_pages} pages; more results were not fetched")
            break
    if invalid:
        shown = ", ".join(invalid[:5]) + (f" and {len(invalid) - 5} more" if len(invalid) > 5 else "")
        result.warnings.append(f"{len(invalid)} resource(s) failed R4B validation and were kept as raw JSON: {shown}")
    return result
