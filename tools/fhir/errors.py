"""Errors raised by the FHIR client.

Every failure the client reports is a `FhirError`, so a caller (a tool, a graph node, the command line) can catch
the whole family with one clause and still tell the kinds apart::

    FhirError
    ├── FhirConfigError          the base URL or an option is unusable (no scheme, userinfo, a query string...)
    ├── InvalidRequestError      the caller asked for something malformed (a bad id, reference, parameter, bundle)
    ├── UrlOutsideBaseError      a URL (a `next` link, a reference, a model-written URL) leaves the configured base
    ├── WriteNotAllowedError     a verb other than GET/HEAD while the client is read-only
    ├── FhirTransportError       the server could not be reached (connection refused, reset, TLS) after the retries
    │   └── FhirTimeoutError     ... and the last attempt timed out
    ├── FhirStatusError          the server answered with an error status (carries status and parsed issues)
    │   ├── FhirAuthError        401 or 403
    │   ├── ResourceNotFoundError  404
    │   ├── ResourceGoneError    410 (deleted)
    │   └── OperationOutcomeError  any other error answer whose body is an OperationOutcome (also a 200 carrying
    │                             only an error-level OperationOutcome where a resource or Bundle was expected)
    └── NotFhirResponseError     the answer is not FHIR JSON: an HTML page, an empty body, the wrong content type,
                                 invalid JSON, or JSON without a resourceType

Foreign errors (httpx, pydantic) are translated with ``raise ... from exc``. Messages always name the method and
the URL, with user info stripped and secret-looking query values replaced (see `redaction.redact_url`); body
snippets are short, flattened, and scrubbed of bearer tokens and of the request's own Authorization value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "FhirAuthError",
    "FhirConfigError",
    "FhirError",
    "FhirStatusError",
    "FhirTimeoutError",
    "FhirTransportError",
    "InvalidRequestError",
    "NotFhirResponseError",
    "OperationOutcomeError",
    "OutcomeIssue",
    "ResourceGoneError",
    "ResourceNotFoundError",
    "UrlOutsideBaseError",
    "WriteNotAllowedError",
]


@dataclass(frozen=True)
class OutcomeIssue:
    """One `OperationOutcome.issue`: what the server said went wrong."""

    severity: str  # fatal | error | warning | information
    code: str  # the IssueType code: not-found, not-supported, invalid, processing, ...
    diagnostics: str | None = None
    details: str | None = None  # issue.details.text
    expression: tuple[str, ...] = ()

    def render(self) -> str:
        """A short line such as ``error/not-found: Patient/x is not known``."""
        text = self.diagnostics or self.details or ""
        return f"{self.severity}/{self.code}: {text}" if text else f"{self.severity}/{self.code}"


class FhirError(Exception):
    """Base class of every error the FHIR client raises."""


class FhirConfigError(FhirError, ValueError):
    """The client was configured with something unusable (a malformed or credential-carrying base URL, bad limits)."""


class InvalidRequestError(FhirError, ValueError):
    """A call's arguments are malformed: an id with a slash, a reference that is not `Type/id`, a non-Bundle."""


class UrlOutsideBaseError(FhirError, ValueError):
    """A URL the client was asked to fetch is not under the configured base URL (scheme, host, port, path)."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url  # already redacted


class WriteNotAllowedError(FhirError, PermissionError):
    """A write verb was requested from a read-only client (construct it with ``allow_writes=True`` to permit it)."""


class _HttpError(FhirError):
    """Shared shape of the errors that come from one HTTP exchange."""

    def __init__(self, message: str, *, method: str, url: str, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.method = method
        self.url = url  # already redacted
        self.status = status
        self.attempts = attempts


class FhirTransportError(_HttpError):
    """The server could not be reached, or the connection broke, on every attempt."""


class FhirTimeoutError(FhirTransportError):
    """The last attempt timed out (connect, read, write or pool timeout)."""


class FhirStatusError(_HttpError):
    """The server answered with an error status; ``issues`` holds its OperationOutcome, if it sent one."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int | None,
        issues: Sequence[OutcomeIssue] = (),
        attempts: int = 1,
    ) -> None:
        super().__init__(message, method=method, url=url, status=status, attempts=attempts)
        self.issues: tuple[OutcomeIssue, ...] = tuple(issues)


class FhirAuthError(FhirStatusError):
    """401 (no or expired credentials) or 403 (credentials without the needed scope)."""


class ResourceNotFoundError(FhirStatusError):
    """404: the resource, the type or the operation is not known to the server."""


class ResourceGoneError(FhirStatusError):
    """410: the resource existed and was deleted."""


class OperationOutcomeError(FhirStatusError):
    """The server explained the failure with an OperationOutcome; ``issues`` carries it, parsed."""


class NotFhirResponseError(_HttpError):
    """The answer is not FHIR JSON (HTML, empty, wrong content type, invalid JSON, no resourceType)."""

    def __init__(
        self, message: str, *, method: str, url: str, status: int | None, content_type: str, snippet: str
    ) -> None:
        super().__init__(message, method=method, url=url, status=status)
        self.content_type = content_type
        self.snippet = snippet
