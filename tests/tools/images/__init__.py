"""Helpers for the image store tests: real images made with Pillow, and a real HTTP server on 127.0.0.1.

Kept here (not in a conftest) so the test modules can import them; the `server` fixture is in conftest.py.
"""

from __future__ import annotations

import io
import random
import struct
import threading
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (40, 30), *, seed: int = 1, **save: Any) -> bytes:
    """A noisy RGB image (noise keeps the compressed data long, so a cut lands inside the pixel data)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size)
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size[0] * size[1])])
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` 1-bit pixels with almost no data: a decompression bomb's
    shape, without the memory."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def dicom_bytes() -> bytes:
    """The start of a DICOM Part 10 file: a 128-byte preamble, then the DICM magic and a few elements."""
    return b"\x00" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00" + b"\x00" * 200


HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Image Challenge</title></head><body>Sign in</body></html>\n"


@dataclass
class Route:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_length: bool = True


class ImageServer:
    """A threaded stdlib HTTP server; `hits[path]` counts the GETs of each path (query excluded), `seen[path]`
    keeps their headers."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.seen: dict[str, list[dict[str, str]]] = defaultdict(list)
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with owner._lock:
                    owner.hits[path] += 1
                    owner.seen[path].append(dict(self.headers))
                    route = owner.routes.get(path)
                if route is None:
                    route = Route(b"no such thing", status=404, headers={"Content-Type": "text/plain"})
                time.sleep(route.delay)
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.content_length:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                try:
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a size cap, a timeout)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="image-server", daemon=True
        )
        self._thread.start()

    def serve(
        self,
        path: str,
        body: bytes,
        *,
        status: int = 200,
        content_type: str | None = "image/png",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        content_length: bool = True,
    ) -> str:
        """Answer GET ``path`` (any query) with ``body``; returns the URL, query included."""
        all_headers = {"Content-Type": content_type} if content_type else {}
        all_headers.update(headers or {})
        self.routes[path.split("?", 1)[0]] = Route(body, status, all_headers, delay, content_length)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
