"""What an image source names: an http(s) URL, a file:// URL or a path, parsed once into what to read, the key the
index files it under, and the redacted name every ref, log line and error shows.

Credentials never leave this module in clear: a URL's user info is used for the request but removed from the
shown name and from the index key, and the values of query parameters named like credentials (``token``,
``api_key``, ``sig``, ``X-Amz-Signature``, ``password``...) are masked in what is shown. Other query parameters are
kept, because they often *are* the image's name (NEJM's ``?id=IC20240111``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

from .errors import ImageFetchError

__all__ = ["Source", "parse_source", "redact"]

MASK = "***"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_OTHER_SCHEME = re.compile(r"^(data|ftp|ftps|s3|gs|blob|about|javascript):", re.IGNORECASE)
# Substrings, not whole names, so that ``X-Amz-Signature``, ``access_token`` and ``apiKey`` are all caught; masking
# an innocent ``monkey=`` now and then is the cheaper mistake.
_SECRET_NAME = re.compile(r"token|key|sig|password|passwd|pwd|secret|credential|auth", re.IGNORECASE)
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/\s?#@]*@")
_QUERY_VALUE = re.compile(r"([?&;]([^=&;\s\"'<>#?]+)=)([^&;\s\"'<>#]*)")


def redact(text: str) -> str:
    """``text`` with URL user info removed and secret-looking query values masked; never raises."""
    text = _USERINFO.sub(r"\1", str(text))
    return _QUERY_VALUE.sub(lambda m: m.group(1) + MASK if _SECRET_NAME.search(m.group(2)) else m.group(0), text)


@dataclass(frozen=True)
class Source:
    """A parsed image source. ``url`` (user info included) is for the request only: it is kept out of ``repr``."""

    kind: Literal["http", "file"]
    shown: str  # the redacted URL or the absolute path: what refs, logs and errors carry
    key: str  # sha256 hex of the normalised source, credentials excluded: the index key
    url: str = field(default="", repr=False)
    path: Path | None = None


def _key(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def _unsupported(text: str, why: str) -> ImageFetchError:
    shown = redact(text if len(text) <= 200 else text[:200] + "...")  # a data: URL can be megabytes long
    return ImageFetchError(f"image source {shown!r} {why}", source=shown)


def _http(text: str) -> Source:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _unsupported(text, f"is a malformed URL ({exc})") from exc
    if not parts.hostname:
        raise _unsupported(text, "is a URL without a host")
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    host_port = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host_port = f"{host_port}:{port}"
    path = parts.path or "/"
    # The fragment never reaches the server, so it takes no part in the image's identity.
    shown = redact(urlunsplit((scheme, host_port, path, parts.query, "")))
    fetch = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))
    return Source(kind="http", shown=shown, key=_key(urlunsplit((scheme, host_port, path, parts.query, ""))), url=fetch)


def _file(path: Path) -> Source:
    absolute = path.expanduser().resolve()
    return Source(kind="file", shown=str(absolute), key=_key(f"file:{absolute}"), path=absolute)


def _file_url(text: str) -> Source:
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise _unsupported(text, "is a file:// URL naming another host; copy the file here and give its path")
    return _file(Path(url2pathname(parts.path)))


def parse_source(source: str | Path) -> Source:
    """Parse an http(s) URL, a file:// URL or a path (relative paths resolve against the working directory)."""
    if isinstance(source, Path):
        return _file(source)
    if not isinstance(source, str):
        raise TypeError(f"an image source must be a str or a Path, not {type(source).__name__}")
    text = source.strip()
    if not text:
        raise ImageFetchError("image source '' is empty; give a URL or a path", source="")
    match = _URL_SCHEME.match(text)
    if match:
        scheme = match.group(1).lower()
        if scheme in _DEFAULT_PORTS:
            return _http(text)
        if scheme == "file":
            return _file_url(text)
        raise _unsupported(text, f"uses the {scheme!r} scheme; give an http(s) URL, a file:// URL or a path")
    if text.lower().startswith("file:"):
        return _file_url(text)
    if _OTHER_SCHEME.match(text):
        raise _unsupported(text, "is not an http(s) URL, a file:// URL or a path")
    return _file(Path(text))
