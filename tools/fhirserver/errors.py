"""Errors of the local FHIR server tools (starting sekmet-fhir, loading bundles into it).

Errors::

    FhirServerError               base of everything this package raises on purpose
    ├── ServerConfigError         settings we refuse before starting anything (e.g. a non-loopback host)
    ├── ServerStartError          the server exited during start-up or never answered GET /metadata in time
    ├── BundleRewriteError        a bundle that cannot be rewritten to keep its ids (dangling urn:uuid reference)
    └── BundleLoadError           the server refused a bundle, or could not be reached while loading it
"""

from __future__ import annotations

from typing import Any


class FhirServerError(Exception):
    """Base class for the local FHIR server tools' errors."""


class ServerConfigError(FhirServerError, ValueError):
    """A server setting refused before anything starts."""


class ServerStartError(FhirServerError, RuntimeError):
    """The server process exited during start-up or never became ready; ``log_tail`` holds its last output."""

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        super().__init__(f"{message}\n--- server log (tail) ---\n{log_tail}" if log_tail else message)
        self.log_tail = log_tail


class BundleRewriteError(FhirServerError, ValueError):
    """A transaction bundle that cannot be rewritten into id-keeping PUT entries."""


class BundleLoadError(FhirServerError):
    """The server refused a bundle (``status``, its OperationOutcome ``outcome``), or was unreachable (status None)."""

    def __init__(self, source: str, message: str, *, status: int | None = None,
                 outcome: dict[str, Any] | None = None) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.status = status
        self.outcome = outcome
