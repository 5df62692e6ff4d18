"""Bearer and SMART Backend Services auth against an `httpx.MockTransport` EHR (no network, fast)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from pydantic import SecretStr

from tools.fhir.auth import AuthError, BearerTokenAuth, SmartBackendAuth, SmartCredentials
from tools.fhir.errors import FhirAuthError, FhirConfigError, FhirError
from tools.fhir.keys import generate_keypair, thumbprint

BASE = "https://ehr.example/fhir"
DISCOVERY_URL = f"{BASE}/.well-known/smart-configuration"
TOKEN_URL = "https://login.example/oauth2/token"  # another host, as Epic does
PATIENT_URL = f"{BASE}/Patient/1"
CLIENT_ID = "clinicflow-test"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGS = ["RS384", "ES384"]


@pytest.fixture(scope="module", params=ALGS)
def keypair(request: pytest.FixtureRequest) -> tuple[str, str, dict[str, Any]]:
    pem, jwk = generate_keypair(request.param)
    return request.param, pem, jwk


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class FakeEhr:
    """A FHIR server plus a token endpoint on another host that checks each assertion like a real one would."""

    def __init__(self, alg: str, jwk: dict[str, Any], *, expires_in: int = 3600, token_delay: float = 0.0) -> None:
        self.alg = alg
        self.public_key = jwt.PyJWK(jwk).key
        self.expires_in = expires_in
        self.token_delay = token_delay
        self.token_override: httpx.Response | None = None
        self.always_401 = False
        self.valid: set[str] = set()
        self.issued: list[str] = []
        self.assertions: list[str] = []
        self.forms: list[dict[str, str]] = []
        self.token_requests: list[httpx.Request] = []
        self.discovery_hits = 0
        self.fhir_hits = 0
        self.seen_tokens: list[str] = []
        self.lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL and self.token_delay:
            time.sleep(self.token_delay)  # other threads run while a token request is in flight
        return self.respond(request)

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL and self.token_delay:
            await asyncio.sleep(self.token_delay)  # other tasks run while a token request is in flight
        return self.respond(request)

    def respond(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url == DISCOVERY_URL:
            self.discovery_hits += 1
            return httpx.Response(
                200, json={"token_endpoint": TOKEN_URL, "grant_types_supported": ["client_credentials"]}
            )
        if url == TOKEN_URL and request.method == "POST":
            return self._token(request)
        self.fhir_hits += 1
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.seen_tokens.append(token)
        if self.always_401 or token not in self.valid:
            return httpx.Response(401, json={"resourceType": "OperationOutcome"})
        return httpx.Response(200, json={"resourceType": "Patient", "id": "1"})

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        with self.lock:
            self.token_requests.append(request)
            self.forms.append(form)
            self.assertions.append(form.get("client_assertion", ""))
        if self.token_override is not None:
            return self.token_override
        jwt.decode(form["client_assertion"], self.public_key, algorithms=[self.alg], audience=TOKEN_URL)
        token = f"tok{len(self.issued)}-{secrets.token_urlsafe(24)}"
        with self.lock:
            self.issued.append(token)
            self.valid.add(token)
        return httpx.Response(200, json={"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})


def make_auth(keypair: tuple[str, str, dict[str, Any]], **kwargs: Any) -> SmartBackendAuth:
    alg, pem, _ = keypair
    token_url = kwargs.pop("token_url", None)
    credentials = SmartCredentials(
        client_id=CLIENT_ID, private_key_pem=SecretStr(pem), fhir_base_url=BASE, token_url=token_url, alg=alg
    )
    return SmartBackendAuth(credentials, **kwargs)


def fetch(
    auth: httpx.Auth, ehr: FakeEhr, mode: str, count: int = 1, before_each: Callable[[int], None] = lambda i: None
) -> list[httpx.Response]:
    """GET the patient ``count`` times through one sync or async client, calling ``before_each(i)`` first."""
    if mode == "sync":
        with httpx.Client(transport=httpx.MockTransport(ehr.handle), auth=auth, timeout=7.0) as client:
            out = []
            for i in range(count):
                before_each(i)
                out.append(client.get(PATIENT_URL))
            return out

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(ehr.ahandle), auth=auth, timeout=7.0) as client:
            out = []
            for i in range(count):
                before_each(i)
                out.append(await client.get(PATIENT_URL))
            return out

    return asyncio.run(run())


MODES = ["sync", "async"]


# ---------- bearer ----------


@pytest.mark.parametrize("token", ["s3cr3t-bearer-value", SecretStr("s3cr3t-bearer-value")])
def test_bearer_sets_header_and_repr_hides_it(token: str | SecretStr) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200)

    auth = BearerTokenAuth(token)
    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as client:
        client.get(PATIENT_URL)
    assert seen == ["Bearer s3cr3t-bearer-value"]
    assert "s3cr3t" not in repr(auth) and "s3cr3t" not in str(auth)


@pytest.mark.parametrize("bad", ["", "two words", "line\nbreak"])
def test_bearer_refuses_unusable_token_without_quoting_it(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        BearerTokenAuth(bad)
    assert not bad or bad not in str(info.value)


# ---------- SMART: the assertion and the form ----------


@pytest.mark.parametrize("mode", MODES)
def test_assertion_is_a_valid_signed_jwt_and_form_is_right(keypair, mode: str) -> None:
    alg, _, jwk = keypair
    ehr, clock = FakeEhr(alg, jwk), FakeClock()
    auth = make_auth(keypair, clock=clock)
    assert [r.status_code for r in fetch(auth, ehr, mode)] == [200]

    assert len(ehr.forms) == 1
    form = ehr.forms[0]
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "system/*.read"
    assert form["client_assertion_type"] == ASSERTION_TYPE
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header["alg"] == alg and header["typ"] == "JWT" and header["kid"] == jwk["kid"] == thumbprint(jwk)
    claims = jwt.decode(form["client_assertion"], jwt.PyJWK(jwk).key, algorithms=[alg], audience=TOKEN_URL)
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == TOKEN_URL
    assert claims["exp"] == int(clock.now) + 300
    assert uuid.UUID(claims["jti"])
    assert ehr.token_requests[0].extensions["timeout"]["read"] == 7.0  # the client's timeout travels along


def test_each_assertion_has_a_fresh_jti_and_configured_kid_and_jku(keypair) -> None:
    alg, pem, jwk = keypair
    ehr = FakeEhr(alg, jwk)
    credentials = SmartCredentials(
        client_id=CLIENT_ID,
        private_key_pem=SecretStr(pem),
        fhir_base_url=BASE,
        alg=alg,
        kid="key-2024",
        jku="https://app.example/jwks.json",
        scope="system/Patient.rs",
    )
    auth = SmartBackendAuth(credentials)
    fetch(auth, ehr, "sync")
    auth.invalidate()
    fetch(auth, ehr, "sync")
    jtis = [jwt.decode(a, options={"verify_signature": False})["jti"] for a in ehr.assertions]
    assert len(jtis) == 2 and jtis[0] != jtis[1]
    header = jwt.get_unverified_header(ehr.assertions[0])
    assert header["kid"] == "key-2024" and header["jku"] == "https://app.example/jwks.json"
    assert ehr.forms[0]["scope"] == "system/Patient.rs"


# ---------- discovery and caching ----------


@pytest.mark.parametrize("mode", MODES)
def test_discovery_runs_once_and_token_is_cached(keypair, mode: str) -> None:
    ehr, clock = FakeEhr(keypair[0], keypair[2]), FakeClock()
    auth = make_auth(keypair, clock=clock)
    responses = fetch(auth, ehr, mode, count=10)
    assert [r.status_code for r in responses] == [200] * 10
    assert (ehr.discovery_hits, len(ehr.token_requests), ehr.fhir_hits) == (1, 1, 10)
    assert auth.token_url == TOKEN_URL
    auth.invalidate()
    fetch(auth, ehr, mode, count=2)
    assert (ehr.discovery_hits, len(ehr.token_requests)) == (1, 2)  # a new token, but no second discovery


def test_configured_token_url_skips_discovery(keypair) -> None:
    ehr = FakeEhr(keypair[0], keypair[2])
    fetch(make_auth(keypair, token_url=TOKEN_URL), ehr, "sync", count=3)
    assert (ehr.discovery_hits, len(ehr.token_requests)) == (0, 1)


@pytest.mark.parametrize("mode", MODES)
def test_token_expiring_mid_run_is_refreshed_exactly_once(keypair, mode: str) -> None:
    ehr, clock = FakeEhr(keypair[0], keypair[2], expires_in=3600), FakeClock()
    auth = make_auth(keypair, clock=clock, refresh_margin=60)
    start = clock.now
    # requests at t=0, 1000, 3539 (still fresh), 3541 (inside the margin: refresh), 3600, 4000 (new token fresh)
    times = [0, 1000, 3539, 3541, 3600, 4000]

    def tick(i: int) -> None:
        clock.now = start + times[i]

    responses = fetch(auth, ehr, mode, count=len(times), before_each=tick)
    assert [r.status_code for r in responses] == [200] * len(times)
    assert len(ehr.token_requests) == 2
    assert ehr.seen_tokens == [ehr.issued[0]] * 3 + [ehr.issued[1]] * 3


def test_short_lived_token_is_reused_for_half_its_lifetime(keypair) -> None:
    ehr, clock = FakeEhr(keypair[0], keypair[2], expires_in=10), FakeClock()
    auth = make_auth(keypair, clock=clock, refresh_margin=60)
    start = clock.now
    times = [0, 4.9, 5.1]
    fetch(auth, ehr, "sync", count=3, before_each=lambda i: setattr(clock, "now", start + times[i]))
    assert len(ehr.token_requests) == 2
    assert ehr.seen_tokens == [ehr.issued[0], ehr.issued[0], ehr.issued[1]]


# ---------- 401 handling ----------


@pytest.mark.parametrize("mode", MODES)
def test_401_refreshes_once_and_replays_once(keypair, mode: str) -> None:
    ehr = FakeEhr(keypair[0], keypair[2])
    auth = make_auth(keypair)
    fetch(auth, ehr, mode)
    ehr.valid.clear()  # the server revokes the token
    [response] = fetch(auth, ehr, mode)
    assert response.status_code == 200
    assert len(ehr.token_requests) == 2 and ehr.fhir_hits == 3
    assert ehr.seen_tokens == [ehr.issued[0], ehr.issued[0], ehr.issued[1]]


@pytest.mark.parametrize("mode", MODES)
def test_second_401_is_returned_not_looped(keypair, mode: str) -> None:
    ehr = FakeEhr(keypair[0], keypair[2])
    ehr.always_401 = True
    [response] = fetch(make_auth(keypair), ehr, mode)
    assert response.status_code == 401
    assert len(ehr.token_requests) == 2 and ehr.fhir_hits == 2


# ---------- no stampede ----------


async def test_concurrent_async_requests_fetch_one_token(keypair) -> None:
    ehr = FakeEhr(keypair[0], keypair[2], token_delay=0.02)
    auth = make_auth(keypair)
    async with httpx.AsyncClient(transport=httpx.MockTransport(ehr.ahandle), auth=auth) as client:
        responses = await asyncio.gather(*(client.get(PATIENT_URL) for _ in range(20)))
        assert [r.status_code for r in responses] == [200] * 20
        assert (ehr.discovery_hits, len(ehr.token_requests)) == (1, 1)
        ehr.valid.clear()  # all 20 now meet a 401 together: still one refresh between them
        responses = await asyncio.gather(*(client.get(PATIENT_URL) for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert len(ehr.token_requests) == 2


def test_concurrent_threads_fetch_one_token(keypair) -> None:
    ehr = FakeEhr(keypair[0], keypair[2], token_delay=0.05)
    auth = make_auth(keypair)
    with (
        httpx.Client(transport=httpx.MockTransport(ehr.handle), auth=auth) as client,
        ThreadPoolExecutor(max_workers=10) as pool,
    ):
        statuses = list(pool.map(lambda _: client.get(PATIENT_URL).status_code, range(10)))
    assert statuses == [200] * 10
    assert len(ehr.token_requests) == 1


# ---------- token endpoint failures ----------


def test_invalid_client_raises_auth_error_without_secrets(keypair) -> None:
    ehr = FakeEhr(keypair[0], keypair[2])
    ehr.token_override = httpx.Response(400, json={"error": "invalid_client", "error_description": "unknown key"})
    with pytest.raises(AuthError) as info:
        fetch(make_auth(keypair), ehr, "sync")
    error = info.value
    assert isinstance(error, FhirAuthError) and isinstance(error, FhirError)
    assert (error.status, error.error, error.description) == (400, "invalid_client", "unknown key")
    assert "invalid_client" in str(error) and "unknown key" in str(error)
    assert_no_secret(keypair, ehr, [str(error), repr(error), *map(str, error.args)])


def test_server_echoing_the_assertion_is_redacted(keypair) -> None:
    ehr = FakeEhr(keypair[0], keypair[2])

    def echo(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            assertion = parse_qs(request.content.decode())["client_assertion"][0]
            ehr.assertions.append(assertion)
            return httpx.Response(401, json={"error": "invalid_client", "error_description": f"bad jwt {assertion}"})
        return ehr.respond(request)

    client = httpx.Client(transport=httpx.MockTransport(echo), auth=make_auth(keypair))
    with client, pytest.raises(AuthError) as info:
        client.get(PATIENT_URL)
    assert info.value.status == 401 and "[redacted]" in str(info.value)
    assert_no_secret(keypair, ehr, [str(info.value), info.value.description or ""])


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(200, text="<html>login</html>", headers={"content-type": "text/html"}), "not a JSON object"),
        (httpx.Response(200, json={"token_type": "bearer", "expires_in": 300}), "no usable access_token"),
        (httpx.Response(200, json={"access_token": "x", "token_type": "mac"}), "not bearer"),
        (httpx.Response(200, json={"access_token": "x", "expires_in": "soon"}), "expires_in"),
        (httpx.Response(503, text="<html>down</html>", headers={"content-type": "text/html"}), "HTTP 503"),
    ],
)
def test_unusable_token_answers_raise_auth_error(keypair, answer: httpx.Response, expected: str) -> None:
    ehr = FakeEhr(keypair[0], keypair[2])
    ehr.token_override = answer
    with pytest.raises(AuthError, match=expected) as info:
        fetch(make_auth(keypair), ehr, "async")
    assert info.value.status == answer.status_code and info.value.url == TOKEN_URL


def test_failed_discovery_raises_auth_error(keypair) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"resourceType": "OperationOutcome"})

    client = httpx.Client(transport=httpx.MockTransport(handler), auth=make_auth(keypair))
    with client, pytest.raises(AuthError, match="SMART discovery") as info:
        client.get(PATIENT_URL)
    assert info.value.status == 404 and info.value.url == DISCOVERY_URL


def test_key_that_does_not_fit_the_alg_is_a_config_error(keypair) -> None:
    alg, pem, _ = keypair
    other = "ES384" if alg == "RS384" else "RS384"
    credentials = SmartCredentials(client_id=CLIENT_ID, private_key_pem=SecretStr(pem), fhir_base_url=BASE, alg=other)
    with pytest.raises(FhirConfigError, match=other) as info:
        SmartBackendAuth(credentials)
    assert pem_body(pem)[:40] not in str(info.value)


# ---------- secrets stay out of reprs and logs ----------


def test_credentials_and_auth_reprs_hide_key_and_token(keypair, tmp_path) -> None:
    alg, pem, jwk = keypair
    path = tmp_path / "key.pem"
    path.write_text(pem)
    credentials = SmartCredentials.from_key_file(path, client_id=CLIENT_ID, fhir_base_url=BASE, alg=alg)
    assert credentials.private_key_pem.get_secret_value() == pem
    ehr = FakeEhr(alg, jwk)
    auth = SmartBackendAuth(credentials)
    fetch(auth, ehr, "sync")
    texts = [
        repr(credentials),
        str(credentials),
        repr(auth),
        str(auth),
        repr(vars(auth)),
        repr(credentials.model_dump()),
    ]
    assert_no_secret(keypair, ehr, texts)
    assert CLIENT_ID in repr(auth)


def test_no_secret_in_any_log_record(keypair, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # root: includes httpx, httpcore and tools.fhir.auth
    for name in ("httpx", "httpcore", "tools.fhir.auth"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    ehr, clock = FakeEhr(keypair[0], keypair[2], expires_in=100), FakeClock()
    auth = make_auth(keypair, clock=clock)
    start = clock.now
    fetch(auth, ehr, "sync", count=3, before_each=lambda i: setattr(clock, "now", start + 60 * i))
    ehr.valid.clear()
    fetch(auth, ehr, "async", count=2)
    ehr.token_override = httpx.Response(400, json={"error": "invalid_grant"})
    auth.invalidate()
    with pytest.raises(AuthError):
        fetch(auth, ehr, "async")
    messages = [r.getMessage() for r in caplog.records]
    assert any("fetched SMART token, expires in 100 s" in m for m in messages)
    assert len(ehr.issued) >= 3
    assert_no_secret(keypair, ehr, messages + [repr(r.args) for r in caplog.records])


def pem_body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if "-----" not in line)


def assert_no_secret(keypair: tuple[str, str, dict[str, Any]], ehr: FakeEhr, texts: list[str]) -> None:
    body = pem_body(keypair[1])
    fragments = [body[i : i + 24] for i in range(0, len(body) - 24, 24)]
    secrets_ = [*ehr.issued, *ehr.assertions, *fragments]
    assert secrets_, "nothing to look for"
    for text in texts:
        for secret in secrets_:
            assert secret not in text, f"a secret leaked into: {text[:120]!r}"
        assert "eyJ" not in text or "[redacted]" in text


def test_generate_keypair_fits_its_alg(keypair) -> None:
    alg, pem, jwk = keypair
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert jwk["alg"] == alg and jwk["kid"] == thumbprint(jwk) and "d" not in jwk
    assert jwk["kty"] == ("RSA" if alg == "RS384" else "EC")
    if alg == "ES384":
        assert jwk["crv"] == "P-384"
    token = jwt.encode({"x": 1}, pem, algorithm=alg)
    assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[alg]) == {"x": 1}
    assert json.dumps(jwk)  # plain JSON, ready to register


@pytest.mark.parametrize("mode", MODES)
def test_token_endpoint_connection_error_releases_the_lock(keypair, mode: str) -> None:
    ehr = FakeEhr(keypair[0], keypair[2])
    auth = make_auth(keypair, token_url=TOKEN_URL)
    down = {"token": True}

    def flaky(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL and down["token"]:
            raise httpx.ConnectError("connection refused", request=request)
        return ehr.respond(request)

    async def aflaky(request: httpx.Request) -> httpx.Response:
        return flaky(request)

    if mode == "sync":
        with httpx.Client(transport=httpx.MockTransport(flaky), auth=auth) as client:
            with pytest.raises(httpx.ConnectError):  # a transport error stays one, for the client's retry policy
                client.get(PATIENT_URL)
            down["token"] = False
            assert client.get(PATIENT_URL).status_code == 200  # a lock left held would deadlock here
        return

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(aflaky), auth=auth) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(PATIENT_URL)
            down["token"] = False
            response = await asyncio.wait_for(client.get(PATIENT_URL), timeout=5)  # same loop, same lock
            assert response.status_code == 200

    asyncio.run(run())
