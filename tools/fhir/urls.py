"""Confinement of every fetched URL to the configured FHIR base.

A `next` link is text the server wrote and an absolute reference or a "GET url" is text a model wrote; either
could point the client at an internal address. `confine` is the single gate: it accepts an absolute URL or a path
relative to the base, and returns the absolute URL only when it has the base's scheme, host and port and a path
that sits under the base path segment by segment (so ``/fhir`` admits ``/fhir/Patient`` but not ``/fhir-admin``).

Rather than normalising tricky input and hoping the server normalises the same way, anything that could change
meaning between us and the server is refused outright: user info, backslashes, control characters, ``.``/``..``
segments, and percent-encoded dots, slashes, backslashes or percent signs in the path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from .errors import FhirConfigError, UrlOutsideBaseError
from .redaction import redact_url

__all__ = ["BaseUrl", "confine", "parse_base_url", "path_under_base"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENCODED_TRICK = re.compile(r"%(2e|2f|5c|25)", re.IGNORECASE)


@dataclass(frozen=True)
class BaseUrl:
    """A normalised base URL: lower-case scheme and host, explicit port, path without a trailing slash."""

    scheme: str
    host: str
    port: int
    netloc: str
    path: str  # "" for a server at the root, else "/fhir" style

    @property
    def url(self) -> str:
        """The base as a string, e.g. ``http://127.0.0.1:8080/fhir``."""
        return f"{self.scheme}://{self.netloc}{self.path}"

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(s for s in self.path.split("/") if s)

    def __str__(self) -> str:
        return self.url


def _path_problem(path: str) -> str | None:
    """Why a path is refused, or None."""
    if _ENCODED_TRICK.search(path):
        return "a percent-encoded dot, slash, backslash or percent sign in the path"
    if any(segment in (".", "..") for segment in path.split("/")):
        return "a '.' or '..' path segment"
    return None


def _text_problem(url: str) -> str | None:
    if "\\" in url:
        return "a backslash"
    if _CONTROL.search(url):
        return "a control character"
    return None


def parse_base_url(url: str) -> BaseUrl:
    """Check and normalise the configured base URL; raise `FhirConfigError` when it cannot be used safely."""
    shown = redact_url(url)
    text = url.strip() if isinstance(url, str) else ""
    problem = _text_problem(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise FhirConfigError(f"FHIR base URL {shown!r} is malformed: {exc}") from exc
    if problem is None and parts.scheme.lower() not in _DEFAULT_PORTS:
        problem = "a scheme other than http or https"
    elif problem is None and not parts.hostname:
        problem = "no host"
    elif problem is None and "@" in parts.netloc:
        problem = "user info (pass credentials through auth, not the URL)"
    elif problem is None and (parts.query or parts.fragment):
        problem = "a query string or fragment"
    elif problem is None:
        problem = _path_problem(parts.path)
    if problem:
        raise FhirConfigError(f"FHIR base URL {shown!r} is refused: it has {problem}")
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    netloc = parts.netloc.lower()
    return BaseUrl(
        scheme=scheme,
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        netloc=netloc,
        path="/" + "/".join(s for s in parts.path.split("/") if s) if parts.path.strip("/") else "",
    )


def _refuse(base: BaseUrl, url: str, why: str) -> UrlOutsideBaseError:
    shown = redact_url(url)
    return UrlOutsideBaseError(f"refused to fetch {shown!r}: {why}; only URLs under {base.url} are allowed", url=shown)


def confine(base: BaseUrl, url: str) -> str:
    """The absolute URL for ``url`` (absolute, origin-relative or base-relative), or `UrlOutsideBaseError`.

    ``Observation?patient=1`` and ``?page=2`` resolve under the base; ``/fhir/Patient/1`` resolves against the
    base's origin; an absolute URL must match the base's scheme, host and port. Fragments are dropped.
    """
    if not isinstance(url, str):
        raise _refuse(base, repr(url), "it is not a string")
    text = url.strip()
    problem = _text_problem(text)
    if problem:
        raise _refuse(base, text, f"it contains {problem}")
    if text.startswith("//"):  # scheme-relative: another host in disguise unless it names ours
        text = f"{base.scheme}:{text}"
    if _HAS_SCHEME.match(text):
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise _refuse(base, text, f"it is malformed ({exc})") from exc
        if "@" in parts.netloc:
            raise _refuse(base, text, "it carries user info")
        scheme = parts.scheme.lower()
        if scheme != base.scheme:
            raise _refuse(base, text, f"its scheme is {scheme!r}")
        if (parts.hostname or "").lower() != base.host:
            raise _refuse(base, text, "it names another host")
        if (port if port is not None else _DEFAULT_PORTS.get(scheme)) != base.port:
            raise _refuse(base, text, "it names another port")
        path, query = parts.path, parts.query
    else:
        parts = urlsplit(text)
        path = parts.path if parts.path.startswith("/") else f"{base.path}/{parts.path}"
        query = parts.query
    problem = _path_problem(path)
    if problem:
        raise _refuse(base, text, f"it contains {problem}")
    segments = [s for s in path.split("/") if s]
    if tuple(segments[: len(base.segments)]) != base.segments:
        raise _refuse(base, text, "its path is not under the base path")
    clean_path = "/" + "/".join(segments) if segments else ""
    return urlunsplit((base.scheme, base.netloc, clean_path, query, ""))


def path_under_base(base: BaseUrl, url: str) -> tuple[str, str]:
    """Confine ``url`` and split it into its path relative to the base (``Patient/1``) and its query string."""
    confined = urlsplit(confine(base, url))
    segments = [s for s in confined.path.split("/") if s][len(base.segments) :]
    return "/".join(segments), confined.query
