"""ImageStore over HTTP, against a real server on 127.0.0.1 that counts the requests it receives."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
from pathlib import Path

import httpx
import pytest

from tools.images import (
    ImageError,
    ImageFetchError,
    ImageInvalidError,
    ImageNotFoundError,
    ImageStore,
    ImageTooLargeError,
)

from . import HTML_PAGE, ImageServer, image_bytes


async def test_one_fetch_for_two_reads(tmp_path: Path, server: ImageServer) -> None:
    data = image_bytes("PNG", (64, 48))
    url = server.serve("/img/a.png", data)
    store = ImageStore(tmp_path)
    first = await store.add(url)
    second = await store.add(url, image_id="image-2")
    assert server.hits["/img/a.png"] == 1 and store.fetches == 1
    assert (
        first["source"] == url
        and first["media_type"] == "image/png"
        and (first["width"], first["height"])
        == (
            64,
            48,
        )
    )
    assert second == {**first, "id": "image-2"}
    assert store.load(first) == store.load(second) == data
    assert "image/*" in server.seen["/img/a.png"][0]["Accept"]


async def test_the_index_survives_a_new_store(tmp_path: Path, server: ImageServer) -> None:
    url = server.serve("/a.png", image_bytes())
    ref = await ImageStore(tmp_path).add(url)
    again = ImageStore(tmp_path)
    assert await again.add(url) == ref
    assert again.fetches == 0 and server.hits["/a.png"] == 1


async def test_two_urls_with_the_same_bytes_share_one_object(tmp_path: Path, server: ImageServer) -> None:
    data = image_bytes("JPEG")
    one = await (store := ImageStore(tmp_path)).add(server.serve("/one.jpg", data, content_type="image/jpeg"))
    two = await store.add(server.serve("/two", data, content_type="application/octet-stream"))
    assert store.fetches == 2 and one["sha256"] == two["sha256"]
    assert [p.name for p in (tmp_path / "objects").rglob("*") if p.is_file()] == [f"{one['sha256']}.jpg"]


async def test_a_corrupt_cached_object_is_refetched_and_logged(
    tmp_path: Path, server: ImageServer, caplog: pytest.LogCaptureFixture
) -> None:
    data = image_bytes()
    url = server.serve("/a.png", data)
    store = ImageStore(tmp_path)
    ref = await store.add(url)
    store.path_of(ref).write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="tools.images"):
        assert await store.add(url) == ref
    assert server.hits["/a.png"] == 2 and store.fetches == 2
    assert "corrupt" in caplog.text and url in caplog.text
    assert store.load(ref) == data


async def test_concurrent_adds_fetch_once(tmp_path: Path, server: ImageServer) -> None:
    url = server.serve("/slow.png", image_bytes(), delay=0.3)
    store = ImageStore(tmp_path)
    refs = await asyncio.gather(*(store.add(url, image_id=f"image-{i}") for i in range(6)))
    assert server.hits["/slow.png"] == 1 and store.fetches == 1
    assert [r["id"] for r in refs] == [f"image-{i}" for i in range(6)] and len({r["sha256"] for r in refs}) == 1


async def test_an_html_answer_is_refused(tmp_path: Path, server: ImageServer) -> None:
    url = server.serve("/image?id=IC20240111", HTML_PAGE, content_type="text/html; charset=utf-8")
    store = ImageStore(tmp_path)
    with pytest.raises(ImageFetchError, match="answered with an HTML page") as info:
        await store.add(url)
    assert not isinstance(info.value, ImageNotFoundError)
    assert info.value.source == url and url in str(info.value) and info.value.status == 200
    assert not (tmp_path / "index").exists()


async def test_html_sent_as_an_image_is_refused_by_validation(tmp_path: Path, server: ImageServer) -> None:
    url = server.serve("/lying.png", HTML_PAGE, content_type="image/png")
    with pytest.raises(ImageInvalidError, match="looks like HTML") as info:
        await ImageStore(tmp_path).add(url)
    assert url in str(info.value)


async def test_a_non_image_content_type_is_refused(tmp_path: Path, server: ImageServer) -> None:
    url = server.serve("/api", b'{"error": "no"}', content_type="application/json")
    with pytest.raises(ImageFetchError, match="Content-Type application/json, not an image"):
        await ImageStore(tmp_path).add(url)


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_images_are_not_found(tmp_path: Path, server: ImageServer, status: int) -> None:
    url = server.serve("/gone.png", b"gone", status=status, content_type="text/plain")
    with pytest.raises(ImageNotFoundError, match=rf"was not found \(HTTP {status}") as info:
        await ImageStore(tmp_path).add(url)
    assert info.value.status == status and info.value.source == url


async def test_a_server_error_is_a_fetch_error_not_a_missing_image(tmp_path: Path, server: ImageServer) -> None:
    url = server.serve("/broken.png", b"oops", status=500, content_type="text/plain")
    with pytest.raises(ImageFetchError, match="answered HTTP 500") as info:
        await ImageStore(tmp_path).add(url)
    assert not isinstance(info.value, ImageNotFoundError) and info.value.status == 500


@pytest.mark.parametrize("announced", [True, False])
async def test_too_many_bytes_are_refused_while_streaming(tmp_path: Path, server: ImageServer, announced: bool) -> None:
    url = server.serve("/big.png", image_bytes("PNG", (200, 200)), content_length=announced)
    store = ImageStore(tmp_path, max_bytes=20_000)
    with pytest.raises(ImageTooLargeError, match="over the limit of 20,000") as info:
        await store.add(url)
    assert url in str(info.value) and store.fetches == 0
    assert ("announces" in str(info.value)) is announced


async def test_too_many_pixels_are_refused(tmp_path: Path, server: ImageServer) -> None:
    url = server.serve("/wide.png", image_bytes("PNG", (300, 20)))
    with pytest.raises(ImageTooLargeError, match="300x20 = 6,000 pixels"):
        await ImageStore(tmp_path, max_pixels=5000).add(url)


async def test_userinfo_is_sent_but_never_stored_or_shown(tmp_path: Path, server: ImageServer) -> None:
    server.serve("/private.png", image_bytes())
    url = f"http://alice:s3cret@127.0.0.1:{server.port}/private.png?id=IC1&token=t0ps3cret"
    ref = await ImageStore(tmp_path).add(url)
    assert ref["source"] == server.url("/private.png?id=IC1&token=***")
    sent = server.seen["/private.png"][0]["Authorization"]
    assert base64.b64decode(sent.removeprefix("Basic ")) == b"alice:s3cret"
    on_disk = " ".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.json"))
    for secret in ("alice", "s3cret", "t0ps3cret"):
        assert secret not in json.dumps(ref) and secret not in on_disk
    server.serve("/private.png", b"", status=404)
    with pytest.raises(ImageNotFoundError) as info:
        await ImageStore(tmp_path / "other").add(url)
    assert "s3cret" not in str(info.value) and "t0ps3cret" not in str(info.value) and "token=***" in str(info.value)


async def test_a_redirect_to_the_same_server_is_followed(tmp_path: Path, server: ImageServer) -> None:
    data = image_bytes()
    server.serve("/new/a.png", data)
    url = server.serve("/old/a.png", b"", status=301, headers={"Location": "/new/a.png"}, content_type=None)
    ref = await (store := ImageStore(tmp_path)).add(url)
    assert ref["source"] == url and store.load(ref) == data
    assert server.hits["/old/a.png"] == 1 and server.hits["/new/a.png"] == 1


async def test_redirect_limits(tmp_path: Path, server: ImageServer) -> None:
    for hop in range(6):  # /r0 -> /r1 -> ... -> /r6: six redirects, one too many
        server.serve(f"/r{hop}", b"", status=302, headers={"Location": f"/r{hop + 1}"}, content_type=None)
    server.serve("/r6", image_bytes())
    store = ImageStore(tmp_path)
    with pytest.raises(ImageFetchError, match="more than 5 redirects"):
        await store.add(server.url("/r0"))
    assert server.hits["/r6"] == 0
    assert (await store.add(server.url("/r1")))["size"] > 0  # five redirects are fine
    server.serve("/ftp", b"", status=302, headers={"Location": "ftp://127.0.0.1/a.png"}, content_type=None)
    with pytest.raises(ImageFetchError, match=r"redirected to 'ftp://127.0.0.1/a.png', which is not an http\(s\) URL"):
        await store.add(server.url("/ftp"))


async def test_a_slow_server_times_out(tmp_path: Path, server: ImageServer) -> None:
    url = server.serve("/slow.png", image_bytes(), delay=2.0)
    with pytest.raises(ImageFetchError, match=r"timed out \(0.3 s limit\)") as info:
        await ImageStore(tmp_path, timeout_s=0.3).add(url)
    assert url in str(info.value)


async def test_a_refused_connection_is_a_fetch_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/a.png"
    with pytest.raises(ImageFetchError, match="ConnectError") as info:
        await ImageStore(tmp_path).add(url)
    assert url in str(info.value) and not isinstance(info.value, ImageNotFoundError)


async def test_an_injected_transport_is_used_and_its_errors_are_translated(tmp_path: Path) -> None:
    # A unit check of the transport hook: a read error mid-body, which a stdlib server cannot produce on demand.
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        raise httpx.ReadError("connection reset by peer", request=request)

    store = ImageStore(tmp_path, transport=httpx.MockTransport(handler))
    with pytest.raises(
        ImageFetchError,
        match=r"image 'https://img.test/a.png\?key=\*\*\*' could not be fetched: "
        "ReadError: connection reset by peer",
    ):
        await store.add("https://img.test/a.png?key=abc")
    assert seen == ["https://img.test/a.png?key=abc"] and store.fetches == 0


def test_every_error_is_an_image_error() -> None:
    for kind in (ImageFetchError, ImageNotFoundError, ImageInvalidError, ImageTooLargeError):
        assert issubclass(kind, ImageError)
