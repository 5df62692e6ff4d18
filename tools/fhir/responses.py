"""Turn one HTTP answer into FHIR JSON or the right typed error (see `errors` for the tree).

A 2xx answer must be JSON (``application/fhir+json``, ``application/json`` or another ``+json`` type; a missing
content type is tolerated when the body is FHIR JSON) holding an object with a ``resourceType``. A 2xx that is only
an error-level OperationOutcome is a failure too. Error statuses map to classes by status first (401/403, 404,
410), then by body (an OperationOutcome, something that is not FHIR).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

from .errors import (
    FhirAuthError,
    FhirError,
    FhirStatusError,
    NotFhirResponseError,
    OperationOutcomeError,
    OutcomeIssue,
    ResourceGoneError,
    ResourceNotFoundError,
)
from .redaction import redact_text

__all__ = ["decode_fhir", "error_for", "is_fhir_json_type", "parse_outcome"]

_SNIPPET_CHARS = 160
_BY_STATUS: dict[int, type[FhirStatusError]] = {
    401: FhirAuthError,
    403: FhirAuthError,
    404: ResourceNotFoundError,
    410: ResourceGoneError,
}


def is_fhir_json_type(content_type: str) -> bool:
    """Is this a JSON media type a FHIR server may use (parameters such as ``fhirVersion`` ignored)?"""
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    # application/json, application/fhir+json, and the DSTU2-era application/json+fhir
    return kind == "application" and (subtype in ("json", "json+fhir") or subtype.endswith("+json"))


def parse_outcome(body: Mapping[str, Any]) -> list[OutcomeIssue]:
    """The issues of an OperationOutcome (tolerant of missing fields; non-dict issues skipped)."""
    issues = []
    for issue in body.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        details = issue.get("details") if isinstance(issue.get("details"), dict) else {}
        expression = issue.get("expression") if isinstance(issue.get("expression"), list) else []
        issues.append(
            OutcomeIssue(
                severity=str(issue.get("severity") or "error"),
                code=str(issue.get("code") or "unknown"),
                diagnostics=str(issue["diagnostics"]) if issue.get("diagnostics") is not None else None,
                details=str(details["text"]) if details.get("text") is not None else None,
                expression=tuple(str(e) for e in expression),
            )
        )
    return issues


def _secrets_of(response: httpx.Response) -> list[str]:
    """The request's own credential, so a server echoing it back cannot leak it into an error."""
    try:
        value = response.request.headers.get("authorization", "")
    except RuntimeError:  # a response built without a request
        return []
    return [value, value.partition(" ")[2]] if value else []


def _snippet(response: httpx.Response) -> str:
    text = response.content[:2000].decode("utf-8", errors="replace")
    flat = re.sub(r"\s+", " ", redact_text(text, _secrets_of(response))).strip()
    return flat if len(flat) <= _SNIPPET_CHARS else flat[:_SNIPPET_CHARS] + "..."


def _body(response: httpx.Response) -> tuple[dict[str, Any] | None, str | None]:
    """The FHIR JSON object, or None and what is wrong with the answer."""
    content_type = response.headers.get("content-type", "")
    if not response.content.strip():
        return None, "an empty body"
    media = content_type.split(";", 1)[0].strip().lower()
    if "html" in media:
        return None, "an HTML page"
    if content_type and not is_fhir_json_type(content_type):
        return None, f"content type {media!r}"
    if response.content.lstrip()[:1] == b"<":  # markup served without a content type
        return None, "an HTML or XML page"
    try:
        data = json.loads(response.content)
    except ValueError:
        return None, "invalid JSON"
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        return None, "JSON that is not a FHIR resource (no resourceType)"
    return data, None


def _not_fhir(response: httpx.Response, method: str, url: str, what: str) -> NotFhirResponseError:
    content_type = response.headers.get("content-type", "") or "none"
    snippet = _snippet(response)
    shown = f": {snippet!r}" if snippet else ""
    return NotFhirResponseError(
        f"{method} {url} answered HTTP {response.status_code} with {what} (content type {content_type}), "
        f"not FHIR JSON{shown}",
        method=method,
        url=url,
        status=response.status_code,
        content_type=content_type,
        snippet=snippet,
    )


def _summary(issues: list[OutcomeIssue], response: httpx.Response) -> str:
    if issues:
        text = "; ".join(i.render() for i in issues[:3])
        return redact_text(text, _secrets_of(response))[:400]
    return _snippet(response) or "(no body)"


def error_for(response: httpx.Response, *, method: str, url: str, attempts: int = 1) -> FhirError:
    """The typed error for a non-2xx answer (the caller raises it)."""
    status = response.status_code
    data, wrong = _body(response)
    is_outcome = data is not None and data.get("resourceType") == "OperationOutcome"
    issues = parse_outcome(data) if data is not None and is_outcome else []
    cls = _BY_STATUS.get(status)
    if cls is None:
        if is_outcome:
            cls = OperationOutcomeError
        elif wrong is not None and wrong != "an empty body":
            return _not_fhir(response, method, url, wrong)
        else:
            cls = FhirStatusError
    reason = f" {response.reason_phrase}" if response.reason_phrase else ""
    return cls(
        f"{method} {url} failed with HTTP {status}{reason}: {_summary(issues, response)}",
        method=method,
        url=url,
        status=status,
        issues=issues,
        attempts=attempts,
    )


def decode_fhir(response: httpx.Response, *, method: str, url: str, attempts: int = 1) -> dict[str, Any]:
    """The FHIR JSON of an answer, or the typed error for it."""
    if not response.is_success:
        raise error_for(response, method=method, url=url, attempts=attempts)
    data, wrong = _body(response)
    if data is None:
        raise _not_fhir(response, method, url, wrong or "an unreadable body")
    if data["resourceType"] == "OperationOutcome":
        issues = parse_outcome(data)
        if any(i.severity in ("error", "fatal") for i in issues):
            raise OperationOutcomeError(
                f"{method} {url} answered HTTP {response.status_code} with an error: {_summary(issues, response)}",
                method=method,
                url=url,
                status=response.status_code,
                issues=issues,
                attempts=attempts,
            )
    return data
