"""SMART Backend Services against a real sekmet-fhir server on 127.0.0.1 (started here, stopped after the module).

sekmet serves discovery at ``{base}/.well-known/smart-configuration`` and its token endpoint at ``/auth/token``
(outside the FHIR base); it verifies the assertion against the JWKS registered for the client, and issues
HS256 access tokens that expire after ``server_auth.token_lifetime`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tools.fhir.auth import AuthError, SmartBackendAuth, SmartCredentials
from tools.fhir.keys import generate_keypair
from tools.fhirserver import SekmetServer

pytestmark = pytest.mark.slow

TOKEN_LIFETIME_S = 3
ALGS = ["RS384", "ES384"]


@dataclass(frozen=True)
class Sekmet:
    base_url: str
    keys: dict[str, tuple[str, str]] = field(repr=False)  # client id -> (alg, private PEM); kept out of reports


@pytest.fixture(scope="module")
def sekmet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sekmet]:
    keys: dict[str, tuple[str, str]] = {}
    clients: list[dict[str, Any]] = []
    for alg in ALGS:
        pem, jwk = generate_keypair(alg)
        client_id = f"clinicflow-{alg.lower()}"
        keys[client_id] = (alg, pem)
        clients.append({"client_id": client_id, "jwks": {"keys": [jwk]}, "scopes": "system/*.read"})
    server_auth = {"types": ["smart"], "smart_clients": clients, "token_lifetime": TOKEN_LIFETIME_S}
    with SekmetServer(tmp_path_factory.mktemp("sekmet-smart"), server_auth=server_auth) as server:
        yield Sekmet(base_url=server.base_url, keys=keys)


def _auth(server: Sekmet, alg: str, **kwargs: Any) -> SmartBackendAuth:
    client_id = f"clinicflow-{alg.lower()}"
    _, pem = server.keys[client_id]
    credentials = SmartCredentials(
        client_id=client_id, private_key_pem=SecretStr(pem), fhir_base_url=server.base_url, alg=alg
    )
    return SmartBackendAuth(credentials, **kwargs)


class TokenLog:
    """Event hooks that count token requests and keep the tokens issued (to look for them in logs)."""

    def __init__(self) -> None:
        self.requests = 0
        self.tokens: list[str] = []

    def on_request(self, request: httpx.Request) -> None:
        if request.url.path == "/auth/token":
            self.requests += 1

    def on_response(self, response: httpx.Response) -> None:
        if response.request.url.path == "/auth/token" and response.status_code == 200:
            response.read()
            self.tokens.append(response.json()["access_token"])

    async def aon_request(self, request: httpx.Request) -> None:
        self.on_request(request)

    async def aon_response(self, response: httpx.Response) -> None:
        if response.request.url.path == "/auth/token" and response.status_code == 200:
            await response.aread()
            self.tokens.append(response.json()["access_token"])


def test_unauthenticated_request_is_refused(sekmet: Sekmet) -> None:
    response = httpx.get(f"{sekmet.base_url}/Patient", timeout=10.0)
    assert response.status_code == 401


@pytest.mark.parametrize("alg", ALGS)
def test_token_is_cached_then_refreshed_after_its_lifetime(
    sekmet: Sekmet, alg: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = TokenLog()
    auth = _auth(sekmet, alg)
    hooks = {"request": [tokens.on_request], "response": [tokens.on_response]}
    with httpx.Client(auth=auth, event_hooks=hooks, timeout=10.0) as client:
        for _ in range(3):
            response = client.get(f"{sekmet.base_url}/Patient", params={"_count": "5"})
            assert response.status_code == 200, response.text
            assert response.json()["resourceType"] == "Bundle"
        assert tokens.requests == 1
        time.sleep(TOKEN_LIFETIME_S + 0.5)
        response = client.get(f"{sekmet.base_url}/Patient")
        assert response.status_code == 200, response.text
        assert tokens.requests == 2
    assert auth.token_url == sekmet.base_url.removesuffix("/fhir") + "/auth/token"
    assert len(tokens.tokens) == 2
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "fetched SMART token, expires in 3 s" in logged
    pem_lines = [line for line in sekmet.keys[f"clinicflow-{alg.lower()}"][1].splitlines() if "-----" not in line]
    for secret in [*tokens.tokens, *pem_lines]:
        assert secret not in logged


async def test_expired_token_meets_401_and_is_replayed_once(sekmet: Sekmet) -> None:
    # A frozen clock makes the client trust its token past the server's expiry, so the server answers 401.
    frozen = time.time()
    tokens = TokenLog()
    auth = _auth(sekmet, "ES384", refresh_margin=0.0, clock=lambda: frozen)
    hooks = {"request": [tokens.aon_request], "response": [tokens.aon_response]}
    async with httpx.AsyncClient(auth=auth, event_hooks=hooks, timeout=10.0) as client:
        assert (await client.get(f"{sekmet.base_url}/Patient")).status_code == 200
        await asyncio.sleep(TOKEN_LIFETIME_S + 0.5)
        response = await client.get(f"{sekmet.base_url}/Patient")
    assert response.status_code == 200, response.text
    # httpx keeps the auth flow's earlier exchanges in history: the refused request, then the new token
    assert [(r.request.url.path, r.status_code) for r in response.history] == [
        ("/fhir/Patient", 401),
        ("/auth/token", 200),
    ]
    assert tokens.requests == 2


def test_unregistered_key_is_refused_with_invalid_client(sekmet: Sekmet) -> None:
    pem, _ = generate_keypair("RS384")
    credentials = SmartCredentials(
        client_id="clinicflow-rs384", private_key_pem=SecretStr(pem), fhir_base_url=sekmet.base_url, alg="RS384"
    )
    client = httpx.Client(auth=SmartBackendAuth(credentials), timeout=10.0)
    with client, pytest.raises(AuthError) as info:
        client.get(f"{sekmet.base_url}/Patient")
    assert (info.value.status, info.value.error) == (401, "invalid_client")
    assert "verification failed" in str(info.value)
    assert not any(line in str(info.value) for line in pem.splitlines() if "-----" not in line)
