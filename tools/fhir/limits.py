"""Named bounds on what one FHIR client may do at once and fetch in one call."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FhirConfigError

__all__ = ["ClientLimits"]


@dataclass(frozen=True)
class ClientLimits:
    """Concurrency and size bounds.

    ``max_concurrency``: requests in flight at once (one semaphore per client, held around every attempt).
    ``max_pages`` / ``max_resources``: where one search (or one `everything` call) stops following `next` links;
    the result is then marked truncated. ``page_size``: the ``_count`` the client asks for in the searches it
    builds itself (`everything` and its fallback); None leaves the server's default. Caller searches are untouched.
    """

    max_concurrency: int = 8
    max_pages: int = 100
    max_resources: int = 20_000
    page_size: int | None = 200

    def __post_init__(self) -> None:
        if self.max_concurrency < 1 or self.max_pages < 1 or self.max_resources < 1:
            raise FhirConfigError(f"invalid client limits {self!r}: every bound must be >= 1")
        if self.page_size is not None and self.page_size < 1:
            raise FhirConfigError(f"invalid client limits {self!r}: page_size must be >= 1 or None")
