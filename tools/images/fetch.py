"""Read an image source's bytes: a local file, or an http(s) URL streamed with a body cap.

HTTP rules: redirects are followed by hand, at most `MAX_REDIRECTS`, and only to http(s) URLs; the answer must be
2xx with an image or octet-stream Content-Type (an HTML page is the usual way an image URL fails: a paywall, a
login page, a viewer page around the figure); the body is refused as soon as it passes the byte limit, whether or
not a Content-Length announced it. Each network wait is bounded by the timeout and the whole fetch by a multiple of
it, so a server dripping one byte at a time cannot hold a consultation forever.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx

from .errors import ImageFetchError, ImageNotFoundError, ImageTooLargeError
from .sources import Source, redact

__all__ = ["MAX_REDIRECTS", "fetch_http", "read_file"]

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_TOTAL_TIMEOUT_FACTOR = 4
_ACCEPT = "image/*, application/octet-stream;q=0.8"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# S3 labels objects uploaded without a type "binary/octet-stream"; the bytes are still checked by validation.
_BINARY_TYPES = {"application/octet-stream", "binary/octet-stream"}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
FileStat = tuple[int, int]  # (size, mtime_ns): how the index notices that a local file changed


def _too_large(shown: str, size: int, max_bytes: int, *, announced: bool = False) -> ImageTooLargeError:
    what = f"announces {size:,} bytes" if announced else f"has more than {max_bytes:,} bytes"
    return ImageTooLargeError(f"image {shown!r} {what}, over the limit of {max_bytes:,}", source=shown)


def read_file(source: Source, *, max_bytes: int) -> tuple[bytes, FileStat]:
    """The file's bytes and its (size, mtime_ns); a missing file is `ImageNotFoundError`."""
    assert source.path is not None
    shown = source.shown
    try:
        info = source.path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ImageFetchError(f"image {shown!r} is not a regular file", source=shown)
        if info.st_size > max_bytes:
            raise _too_large(shown, info.st_size, max_bytes)
        with source.path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise ImageNotFoundError(f"image {shown!r} was not found: no such file", source=shown) from exc
    except OSError as exc:
        raise ImageFetchError(f"image {shown!r} could not be read: {exc.strerror or exc}", source=shown) from exc
    if len(data) > max_bytes:  # the file grew between stat and read
        raise _too_large(shown, len(data), max_bytes)
    return data, (info.st_size, info.st_mtime_ns)


def _check_answer(response: httpx.Response, shown: str) -> None:
    status = response.status_code
    if status in (404, 410):
        raise ImageNotFoundError(
            f"image {shown!r} was not found (HTTP {status} {response.reason_phrase})", source=shown, status=status
        )
    if not 200 <= status < 300:
        raise ImageFetchError(
            f"image {shown!r} could not be fetched: the server answered HTTP {status} {response.reason_phrase}",
            source=shown,
            status=status,
        )
    content_type = response.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if not media or media.startswith("image/") or media in _BINARY_TYPES:
        return
    if media in _HTML_TYPES:
        raise ImageFetchError(
            f"image {shown!r} could not be fetched: the server answered with an HTML page (Content-Type "
            f"{content_type}), not an image; the URL may point at a web page around the image or a login page",
            source=shown,
            status=status,
        )
    raise ImageFetchError(
        f"image {shown!r} could not be fetched: the server answered with Content-Type {content_type}, not an image",
        source=shown,
        status=status,
    )


async def _read_capped(response: httpx.Response, shown: str, max_bytes: int) -> bytes:
    announced = response.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > max_bytes:
        raise _too_large(shown, int(announced), max_bytes, announced=True)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():  # decoded: a gzip bomb is capped on what it expands to
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(shown, total, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def _get(client: httpx.AsyncClient, source: Source, max_bytes: int) -> bytes:
    url = source.url
    for _hop in range(MAX_REDIRECTS + 1):
        async with client.stream("GET", url) as response:
            if response.status_code in _REDIRECTS and "location" in response.headers:
                # A relative Location keeps the user info of `url` (same origin); an absolute one drops it.
                target = urldefrag(urljoin(url, response.headers["location"])).url
                if urlsplit(target).scheme.lower() not in ("http", "https"):
                    raise ImageFetchError(
                        f"image {source.shown!r} redirected to {redact(target)!r}, which is not an http(s) URL",
                        source=source.shown,
                        status=response.status_code,
                    )
                log.debug("image %s: redirected to %s", source.shown, redact(target))
                url = target
                continue
            _check_answer(response, source.shown)
            return await _read_capped(response, source.shown, max_bytes)
    raise ImageFetchError(
        f"image {source.shown!r} could not be fetched: more than {MAX_REDIRECTS} redirects (the last to "
        f"{redact(url)!r})",
        source=source.shown,
    )


async def fetch_http(
    source: Source, *, timeout_s: float, max_bytes: int, transport: httpx.AsyncBaseTransport | None = None
) -> bytes:
    """The body of a GET of ``source.url``, following up to `MAX_REDIRECTS` http(s) redirects."""
    shown = source.shown
    client = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        # Proxies and .netrc from the environment serve real downloads; a loopback server never wants them.
        trust_env=urlsplit(source.url).hostname not in _LOOPBACK,
        headers={"Accept": _ACCEPT},
    )
    try:
        async with asyncio.timeout(timeout_s * _TOTAL_TIMEOUT_FACTOR):
            return await _get(client, source, max_bytes)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise ImageFetchError(
            f"image {shown!r} could not be fetched: timed out ({timeout_s:g} s limit)", source=shown
        ) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        detail = redact(str(exc)) or type(exc).__name__
        raise ImageFetchError(
            f"image {shown!r} could not be fetched: {type(exc).__name__}: {detail}", source=shown
        ) from exc
    finally:
        if transport is None:  # closing the client closes its transport, which a caller may still be using
            await client.aclose()
