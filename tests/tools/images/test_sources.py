"""Parsing image sources: what is read, the index key, and the redacted name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.images import ImageFetchError
from tools.images.sources import parse_source, redact


def test_userinfo_is_used_for_the_request_but_never_shown() -> None:
    source = parse_source("https://alice:s3cret@Img.Example.org:443/a.png#zoom")
    assert source.kind == "http"
    assert source.shown == "https://img.example.org/a.png"
    assert source.url == "https://alice:s3cret@Img.Example.org:443/a.png"
    assert "s3cret" not in repr(source)
    assert source.key == parse_source("https://img.example.org/a.png").key  # credentials are not identity


def test_query_is_kept_but_secret_values_are_masked() -> None:
    source = parse_source("https://www.nejm.org/image?id=IC20240111&api_key=k1&Signature=s1&sig=s2&access_token=t")
    assert source.shown == "https://www.nejm.org/image?id=IC20240111&api_key=***&Signature=***&sig=***&access_token=***"
    assert (
        parse_source("https://www.nejm.org/image?id=IC20240111").key
        != parse_source("https://www.nejm.org/image?id=IC20240112").key
    )


def test_paths_and_file_urls_share_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = parse_source("cases/x.png")
    assert relative.kind == "file" and relative.path == tmp_path / "cases" / "x.png"
    assert relative.shown == str(tmp_path / "cases" / "x.png")
    assert parse_source(f"file://{tmp_path}/cases/x.png").key == relative.key
    assert parse_source(tmp_path / "cases" / "x.png").key == relative.key
    assert parse_source("nejm:0003.png").kind == "file"  # a colon in a file name is not a scheme


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("ftp://host/a.png", "'ftp' scheme"),
        ("data:image/png;base64," + "A" * 1000, r"not an http\(s\) URL"),
        ("file://otherhost/a.png", "another host"),
        ("http:///nohost.png", "without a host"),
        ("   ", "empty"),
    ],
)
def test_unusable_sources_are_refused(text: str, why: str) -> None:
    with pytest.raises(ImageFetchError, match=why) as info:
        parse_source(text)
    assert len(str(info.value)) < 400


def test_redact_scrubs_urls_inside_free_text() -> None:
    text = "GET https://u:p@h.test/x?token=abc&id=1 failed; see http://bob:pw@other.test/"
    assert redact(text) == "GET https://h.test/x?token=***&id=1 failed; see http://other.test/"
