"""A content-addressed local cache of images, so graph state and transcripts carry references, never bytes.

Layout under ``root``::

    objects/<sha[:2]>/<sha>.<ext>     the validated bytes, named by their sha256
    index/<key[:2]>/<key>.json        key = sha256 of the normalised source (no credentials); the digest and metadata

Every file is written to a temporary name in its folder and moved into place with `os.replace`, so a reader (or a
second process sharing the cache) sees a whole object or none. An object is re-hashed whenever it is reused: a
mismatch is an `ImageDigestError` for `load`, and a refetch (logged) for `add`. The same source is read once: later
`add` calls are served from the index, a local file only while its size and modification time are unchanged.
Within one event loop, concurrent `add` calls of one source share one fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, TypedDict

import httpx

from .errors import ImageDigestError, ImageError, ImageInvalidError, ImageNotFoundError, ImageTooLargeError
from .fetch import FileStat, fetch_http, read_file
from .sources import Source, parse_source, redact
from .validate import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIDE,
    EXTENSIONS,
    validate_image,
)

__all__ = ["ImageRef", "ImageStore"]

log = logging.getLogger(__name__)

_DIGEST = re.compile(r"[0-9a-f]{64}")
_INDEX_VERSION = 1


class ImageRef(TypedDict):
    """What graph state and transcripts keep of an image (JSON-able; never the bytes)."""

    id: str  # the image's name within its case or consultation, e.g. "image-1"
    source: str  # the URL (user info removed, credential-like query values masked) or the absolute file path
    sha256: str  # hex digest of the stored bytes
    media_type: str  # "image/png", "image/jpeg", ...
    width: int
    height: int
    size: int  # bytes


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ImageStore:
    """Images by URL or path, fetched once into ``root`` and validated; see the module docstring for the layout.

    ``timeout_s`` bounds each network wait (the whole fetch gets four times it); ``max_bytes``, ``max_pixels`` and
    ``min_side`` are the validation limits (`validate_image`); ``transport`` replaces httpx's network transport.
    """

    def __init__(
        self,
        root: Path,
        *,
        timeout_s: float = 30.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_side: int = DEFAULT_MIN_SIDE,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        for name, value in (("timeout_s", timeout_s), ("max_bytes", max_bytes), ("max_pixels", max_pixels)):
            if not value > 0:
                raise ValueError(f"ImageStore {name} must be positive, got {value!r}")
        if min_side < 1:
            raise ValueError(f"ImageStore min_side must be at least 1, got {min_side!r}")
        self.root = Path(root).expanduser()
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.fetches = 0  # bytes actually read from a source (not served from the cache)
        self._transport = transport
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def __repr__(self) -> str:
        return f"ImageStore({str(self.root)!r}, fetches={self.fetches})"

    # -- adding ---------------------------------------------------------------------------------------------------

    async def add(self, source: str | Path, *, image_id: str = "image-1") -> ImageRef:
        """Store the image at an http(s) URL, file:// URL or path (read once, then served from the cache)."""
        parsed = parse_source(source)
        async with self._source_lock(parsed.key):
            entry = await asyncio.to_thread(self._cached, parsed)
            if entry is None:
                file_stat: FileStat | None = None
                if parsed.kind == "file":
                    data, file_stat = await asyncio.to_thread(read_file, parsed, max_bytes=self.max_bytes)
                else:
                    data = await fetch_http(
                        parsed, timeout_s=self.timeout_s, max_bytes=self.max_bytes, transport=self._transport
                    )
                self.fetches += 1
                log.info("image %s: read %d bytes", parsed.shown, len(data))
                entry = await asyncio.to_thread(self._put, data, parsed.shown, parsed.key, file_stat)
        return self._ref(entry, parsed.shown, image_id)

    def add_bytes(self, data: bytes, *, source: str, image_id: str = "image-1") -> ImageRef:
        """Validate and store bytes the caller already has; ``source`` is only a label (it is not indexed)."""
        shown = redact(source)
        return self._ref(self._put(data, shown, None, None), shown, image_id)

    # -- reading --------------------------------------------------------------------------------------------------

    def path_of(self, ref: ImageRef | Mapping[str, Any] | str) -> Path:
        """The stored object's path for a ref or a digest (``<hex>`` or ``sha256:<hex>``); missing -> not found."""
        digest, label = self._digest_of(ref)
        if not isinstance(ref, str):
            ext = EXTENSIONS.get(str(ref.get("media_type", "")))
            if ext and (path := self._object_path(digest, ext)).is_file():
                return path
        folder = self.root / "objects" / digest[:2]
        found = sorted(folder.glob(f"{digest}.*")) if folder.is_dir() else []
        if not found:
            raise ImageNotFoundError(
                f"image {label!r} has no stored object (sha256 {digest}) in {self.root}", source=label
            )
        return found[0]

    def load(self, ref: ImageRef | Mapping[str, Any] | str) -> bytes:
        """The stored bytes for a ref or a digest, re-hashed; a mismatch is `ImageDigestError`."""
        digest, label = self._digest_of(ref)
        path = self.path_of(ref)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ImageNotFoundError(f"image {label!r}: stored object {path} disappeared", source=label) from exc
        actual = _sha256(data)
        if actual != digest:
            raise ImageDigestError(
                f"image {label!r}: stored object {path} hashes to {actual}, not {digest}; the cache is damaged "
                "(add the image again to refetch it)",
                source=label,
                expected=digest,
                actual=actual,
            )
        return data

    # -- internals ------------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _source_lock(self, key: str) -> AsyncIterator[None]:
        # Locks live only while someone holds or waits for them, so none outlives the event loop that made it.
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]

    def _object_path(self, digest: str, ext: str) -> Path:
        return self.root / "objects" / digest[:2] / f"{digest}.{ext}"

    def _index_path(self, key: str) -> Path:
        return self.root / "index" / key[:2] / f"{key}.json"

    @staticmethod
    def _digest_of(ref: ImageRef | Mapping[str, Any] | str) -> tuple[str, str]:
        if isinstance(ref, str):
            digest = ref.strip().lower().removeprefix("sha256:")
            label = f"sha256:{digest}"
        else:
            digest = str(ref.get("sha256", "")).lower()
            label = redact(str(ref.get("source") or f"sha256:{digest}"))
        if not _DIGEST.fullmatch(digest):
            raise ImageNotFoundError(f"image {label!r}: {digest!r} is not a sha256 hex digest", source=label)
        return digest, label

    def _read_index(self, key: str) -> dict[str, Any] | None:
        path = self._index_path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("image index entry %s is unreadable (%s); the source will be read again", path, exc)
            return None
        required = ("sha256", "media_type", "width", "height", "size")
        if (
            not isinstance(entry, dict)
            or any(k not in entry for k in required)
            or not _DIGEST.fullmatch(str(entry["sha256"]))
        ):
            log.warning("image index entry %s is malformed; the source will be read again", path)
            return None
        return entry

    def _cached(self, source: Source) -> dict[str, Any] | None:
        """The index entry for ``source`` when its object is present and intact, else None (meaning: read it)."""
        entry = self._read_index(source.key)
        if entry is None:
            return None
        if source.kind == "file":
            assert source.path is not None
            try:
                info = source.path.stat()
            except OSError:
                return None  # reading it again raises the proper not-found error
            if entry.get("file_stat") != [info.st_size, info.st_mtime_ns]:
                log.info("image %s changed on disk; reading it again", source.shown)
                return None
        path = self._object_path(entry["sha256"], EXTENSIONS.get(entry["media_type"], "bin"))
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            log.warning("image %s: cached object %s is missing; fetching it again", source.shown, path)
            return None
        actual = _sha256(data)
        if actual != entry["sha256"]:
            log.warning(
                "image %s: cached object %s is corrupt (sha256 %s, expected %s); fetching it again",
                source.shown,
                path,
                actual,
                entry["sha256"],
            )
            path.unlink(missing_ok=True)
            return None
        self._check_limits(entry, source.shown)
        return entry

    def _check_limits(self, entry: Mapping[str, Any], shown: str) -> None:
        # The object passed validation when stored, perhaps under looser limits than this store's.
        width, height, size = int(entry["width"]), int(entry["height"]), int(entry["size"])
        if size > self.max_bytes:
            raise ImageTooLargeError(
                f"image {shown!r} has {size:,} bytes, over the limit of {self.max_bytes:,}", source=shown
            )
        if width * height > self.max_pixels:
            raise ImageTooLargeError(
                f"image {shown!r} is {width}x{height} = {width * height:,} pixels, over the limit of "
                f"{self.max_pixels:,}",
                source=shown,
            )
        if min(width, height) < self.min_side:
            raise ImageInvalidError(
                f"image {shown!r} is {width}x{height} pixels; images under {self.min_side} pixels on a side are "
                "refused",
                source=shown,
            )

    def _put(self, data: bytes, shown: str, key: str | None, file_stat: FileStat | None) -> dict[str, Any]:
        """Validate, write the object (unless an intact copy is there) and, for a read source, its index entry."""
        info = validate_image(
            data, source=shown, max_bytes=self.max_bytes, max_pixels=self.max_pixels, min_side=self.min_side
        )
        digest = _sha256(data)
        path = self._object_path(digest, EXTENSIONS[info.media_type])
        try:
            intact = path.is_file() and _sha256(path.read_bytes()) == digest
        except OSError:
            intact = False
        try:
            if not intact:
                _write_atomic(path, data)
            entry: dict[str, Any] = {
                "version": _INDEX_VERSION,
                "source": shown,
                "sha256": digest,
                "media_type": info.media_type,
                "format": info.format,
                "width": info.width,
                "height": info.height,
                "size": len(data),
                "file_stat": list(file_stat) if file_stat else None,
            }
            if key is not None:
                _write_atomic(self._index_path(key), json.dumps(entry, indent=1).encode("utf-8"))
        except OSError as exc:
            raise ImageError(
                f"image {shown!r} could not be written to the cache {self.root}: {exc}", source=shown
            ) from exc
        return entry

    @staticmethod
    def _ref(entry: Mapping[str, Any], shown: str, image_id: str) -> ImageRef:
        return ImageRef(
            id=image_id,
            source=shown,
            sha256=str(entry["sha256"]),
            media_type=str(entry["media_type"]),
            width=int(entry["width"]),
            height=int(entry["height"]),
            size=int(entry["size"]),
        )
