"""Keep secrets out of URLs, error text and log records.

The client never logs headers and builds every error message from a redacted URL, but servers echo things back
(an HTML error page quoting the request, a proxy banner) and other libraries log too. This module gives the pieces:

- `redact_url`: strip user info and blank the values of secret-looking query parameters;
- `redact_text`: scrub registered secret values, ``Bearer ...`` / ``Basic ...`` credentials, ``Authorization:``
  values, JWT-shaped strings and secret query values out of free text;
- `RedactingFilter`: a `logging.Filter` applying `redact_text` to every record (message, arguments, traceback).

Nothing here is installed globally; the application decides where the filter goes (`install_redaction`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "RedactingFilter",
    "install_redaction",
    "is_secret_param",
    "redact_text",
    "redact_url",
]

MASK = "***"
_MIN_SECRET_LEN = 4  # shorter "secrets" would scrub ordinary words out of every message

# `code` is masked too (an OAuth authorization code), at the price of hiding FHIR's `code` search values in errors.
_SECRET_PARAM = re.compile(
    r"token|secret|password|passwd|assertion|api[-_]?key|session|credential|^code$|^key$|^sig(nature)?$",
    re.IGNORECASE,
)
_SCHEME_CREDENTIAL = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
_AUTH_HEADER = re.compile(r"((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,}]+", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_QUERY_VALUE = re.compile(r"([?&;]([^=&\s\"'<>]+)=)([^&\s\"'<>#]*)")


def is_secret_param(name: str) -> bool:
    """Is a query parameter named like a credential (``access_token``, ``client_secret``, ``code``, ...)?"""
    return bool(_SECRET_PARAM.search(unquote(name)))


def _redact_query(query: str) -> str:
    parts = []
    for piece in query.split("&"):
        name, sep, _value = piece.partition("=")
        parts.append(f"{name}={MASK}" if sep and is_secret_param(name) else piece)
    return "&".join(parts)


def redact_url(url: object) -> str:
    """The URL without user info and with secret-looking query values replaced by ``***``; never raises."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return redact_text(text)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, _redact_query(parts.query), parts.fragment))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Scrub known secret values and credential-shaped substrings out of free text."""
    for secret in sorted((s for s in secrets if s and len(s) >= _MIN_SECRET_LEN), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)
    text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _JWT.sub(MASK, text)
    return _QUERY_VALUE.sub(lambda m: m.group(1) + MASK if is_secret_param(m.group(2)) else m.group(0), text)


class RedactingFilter(logging.Filter):
    """Rewrites each record so that no registered secret or credential-shaped text reaches a handler.

    Put it on handlers (a filter on a logger only sees records logged to that very logger, not its children).
    It never drops a record: it returns True after scrubbing.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = {s for s in secrets if s}

    def add_secret(self, secret: str) -> None:
        """Register one more value (a token just obtained, a client secret) to scrub from every record."""
        if secret:
            self._secrets.add(secret)

    def __repr__(self) -> str:  # never list the secrets themselves
        return f"RedactingFilter(<{len(self._secrets)} secrets>)"

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed %-format; scrub the raw parts instead
            message = f"{record.msg} {record.args}"
        clean = redact_text(message, self._secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info, self._secrets)
        return True


def install_redaction(redacting: RedactingFilter, handlers: Iterable[logging.Handler] | None = None) -> RedactingFilter:
    """Attach the filter to the given handlers (default: the root logger's); the caller owns this global step."""
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if redacting not in handler.filters:
            handler.addFilter(redacting)
    return redacting
