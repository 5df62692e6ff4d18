"""Errors raised by the image store and the validator.

Every failure is an `ImageError`, so a caller (the image lookup of a consultation, a case loader, the command line)
can catch the family with one clause and still tell the kinds apart::

    ImageError
    ├── ImageFetchError          the source could not be read: an HTTP error status, a connection failure or
    │   │                        timeout, too many redirects, an HTML page or another non-image Content-Type
    │   └── ImageNotFoundError   404 or 410, a missing file, or a digest with no stored object
    ├── ImageInvalidError        the bytes are not a usable image: not an image at all (HTML, text, PDF, DICOM...),
    │   │                        corrupt or truncated, an unsupported format, or smaller than the minimum side
    │   └── ImageTooLargeError   more bytes or more pixels than the limits allow
    └── ImageDigestError         stored bytes no longer match the digest they are filed under

Each error carries ``source``: the URL (user info removed, secret-looking query values masked) or the absolute
path, and its message names it, so a log line or a "missing image" reason says which image went wrong.
"""

from __future__ import annotations

__all__ = [
    "ImageDigestError",
    "ImageError",
    "ImageFetchError",
    "ImageInvalidError",
    "ImageNotFoundError",
    "ImageTooLargeError",
]


class ImageError(Exception):
    """Base class of every image store error; ``source`` is the redacted source the message names."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class ImageFetchError(ImageError):
    """The bytes could not be had from the source; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, source: str, status: int | None = None) -> None:
        super().__init__(message, source=source)
        self.status = status


class ImageNotFoundError(ImageFetchError):
    """The source does not exist: HTTP 404/410, no such file, or no stored object for a digest."""


class ImageInvalidError(ImageError):
    """The bytes are not an image this project can read (wrong kind of file, corrupt, unsupported, too small)."""


class ImageTooLargeError(ImageInvalidError):
    """The image has more bytes or more pixels than the configured limits."""


class ImageDigestError(ImageError):
    """A stored object's bytes hash to something other than the digest it is filed under (disk corruption,
    tampering, or a partial copy)."""

    def __init__(self, message: str, *, source: str, expected: str, actual: str) -> None:
        super().__init__(message, source=source)
        self.expected = expected
        self.actual = actual
