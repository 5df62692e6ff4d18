"""URL confinement and base-URL parsing: every fetched URL must stay under the configured base."""

from __future__ import annotations

import pytest

from tools.fhir.errors import FhirConfigError, UrlOutsideBaseError
from tools.fhir.redaction import redact_url
from tools.fhir.urls import confine, parse_base_url, path_under_base

BASE = parse_base_url("http://fhir.test:8080/fhir/")


def test_base_url_is_normalised() -> None:
    base = parse_base_url("HTTP://FHIR.test:8080//fhir/r4/")
    assert (base.scheme, base.host, base.port, base.path) == ("http", "fhir.test", 8080, "/fhir/r4")
    assert base.url == "http://fhir.test:8080/fhir/r4"
    assert parse_base_url("https://h").url == "https://h"
    assert parse_base_url("https://h").port == 443


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h/fhir",
        "http:///fhir",
        "http://user:pw@h/fhir",
        "http://h/fhir?x=1",
        "http://h/fhir/../admin",
        "http://h/fh%2e%2e/x",
        "http://h\\fhir",
        "http://h/f\x00hir",
        "not a url",
    ],
)
def test_unusable_base_urls_are_refused(url: str) -> None:
    with pytest.raises(FhirConfigError):
        parse_base_url(url)


def test_base_url_error_does_not_show_the_password() -> None:
    with pytest.raises(FhirConfigError) as info:
        parse_base_url("http://user:hunter22@h/fhir")
    assert "hunter22" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("Patient/1", "http://fhir.test:8080/fhir/Patient/1"),
        ("Observation?patient=1&code=x", "http://fhir.test:8080/fhir/Observation?patient=1&code=x"),
        ("?page=2", "http://fhir.test:8080/fhir?page=2"),
        ("/fhir/Patient/1", "http://fhir.test:8080/fhir/Patient/1"),
        ("http://FHIR.test:8080/fhir/Patient/1#frag", "http://fhir.test:8080/fhir/Patient/1"),
        ("http://fhir.test:8080/fhir", "http://fhir.test:8080/fhir"),
        ("", "http://fhir.test:8080/fhir"),
    ],
)
def test_urls_under_the_base_are_accepted(url: str, expected: str) -> None:
    assert confine(BASE, url) == expected


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://evil.test:8080/fhir/Patient/1", "another host"),
        ("https://fhir.test:8080/fhir/Patient/1", "scheme"),
        ("http://fhir.test:9090/fhir/Patient/1", "another port"),
        ("http://fhir.test/fhir/Patient/1", "another port"),
        ("http://fhir.test:8080/fhir-admin/users", "not under the base path"),
        ("/fhir-admin", "not under the base path"),
        ("/admin", "not under the base path"),
        ("http://fhir.test:8080/fhir/../admin", "'..'"),
        ("Patient/../../admin", "'..'"),
        ("./Patient", "'.'"),
        ("http://fhir.test:8080/fhir/%2e%2e/admin", "percent-encoded"),
        ("http://fhir.test:8080/fhir/%2E%2E%2Fadmin", "percent-encoded"),
        ("http://fhir.test:8080/fhir/%252e%252e/admin", "percent-encoded"),
        ("http://fhir.test:8080@evil.test/fhir/Patient", "user info"),
        ("http://fhir.test:8080/fhir@evil.test/fhir/Patient", "not under the base path"),
        ("http://user@fhir.test:8080/fhir/Patient", "user info"),
        ("http://fhir.test:8080/fhir\\..\\admin", "backslash"),
        ("//evil.test/fhir/Patient", "another host"),
        ("urn:uuid:1234", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("http://169.254.169.254/latest/meta-data", "another host"),
        ("Patient/1\r\nHost: evil", "control character"),
    ],
)
def test_urls_outside_the_base_are_refused(url: str, why: str) -> None:
    with pytest.raises(UrlOutsideBaseError) as info:
        confine(BASE, url)
    assert why in str(info.value)
    assert "http://fhir.test:8080/fhir" in str(info.value)  # the message says what is allowed


def test_root_base_admits_any_path_on_its_origin_only() -> None:
    root = parse_base_url("http://fhir.test")
    assert confine(root, "/Patient/1") == "http://fhir.test/Patient/1"
    with pytest.raises(UrlOutsideBaseError):
        confine(root, "http://other.test/Patient/1")


def test_path_under_base_splits_path_and_query() -> None:
    assert path_under_base(BASE, "http://fhir.test:8080/fhir/Patient/1/_history/2") == ("Patient/1/_history/2", "")
    assert path_under_base(BASE, "Observation?code=a") == ("Observation", "code=a")


def test_refusal_messages_redact_secrets() -> None:
    with pytest.raises(UrlOutsideBaseError) as info:
        confine(BASE, "http://u:topsecret@evil.test/x?access_token=abc123&code=zz&name=ok")
    text = str(info.value)
    assert "topsecret" not in text and "abc123" not in text and "=zz" not in text
    assert "name=ok" in text


def test_redact_url() -> None:
    assert (
        redact_url("https://u:p@h/fhir?client_secret=s1&x=1&refresh_token=r&password=pw")
        == "https://h/fhir?client_secret=***&x=1&refresh_token=***&password=***"
    )
