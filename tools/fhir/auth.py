"""Authentication for the FHIR client: a static bearer token, or SMART Backend Services.

Both are `httpx.Auth` objects, so the client hands them to httpx and every request (retries and paging included)
is signed the same way. SMART Backend Services is the client-credentials grant with a signed JWT assertion
(RS384 or ES384): the token request is yielded from the auth flow, so it travels through the same transport as
the FHIR requests (tests see it in `httpx.MockTransport`), and it may go to another host than the FHIR base
(Epic does that) because its URL comes from configuration or from the base's own
``.well-known/smart-configuration``.

Errors: `AuthError` (a `tools.fhir.errors.FhirAuthError`) when the token endpoint or its discovery document
refuses or answers something unusable, or when the private key does not fit the algorithm. It carries the HTTP
status and the OAuth ``error``/``error_description``; tokens, the assertion and the key never appear in errors,
reprs or logs (JWT-shaped text in a server's description is redacted too). A FHIR request answered 401 twice is
not an error here: the second 401 response is returned to the client, which maps it to its own error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .errors import FhirAuthError, FhirConfigError
from .keys import SigningAlg, load_signing_key, public_jwk

__all__ = ["AuthError", "BearerTokenAuth", "SmartBackendAuth", "SmartCredentials"]

logger = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART caps the assertion's lifetime at five minutes.
ASSERTION_LIFETIME_S = 300
# A token response without expires_in (SMART requires it) is trusted for this long.
DEFAULT_EXPIRES_IN_S = 300

TokenSteps = Generator[httpx.Request, httpx.Response, str]


class AuthError(FhirAuthError):
    """The SMART token endpoint or discovery document refused or answered nonsense.

    Besides `FhirStatusError`'s ``method``, ``url`` and ``status`` it carries the OAuth ``error`` code and
    ``description`` (scrubbed); never a token, the assertion or the key.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int | None,
        error: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url, status=status)
        self.error = error
        self.description = description


class BearerTokenAuth(httpx.Auth):
    """Send a fixed ``Authorization: Bearer`` token with every request."""

    def __init__(self, token: str | SecretStr) -> None:
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        value = secret.get_secret_value()
        # A token with whitespace or control characters would corrupt the header; say so without quoting it.
        if not value or any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ValueError("a bearer token must be non-empty printable text without whitespace")
        self._token = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "BearerTokenAuth(token='**********')"


class SmartCredentials(BaseModel):
    """A registered SMART Backend Services client. The key is a `SecretStr`, so reprs show stars."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(min_length=1, description="The client id the EHR issued at registration.")
    private_key_pem: SecretStr = Field(description="Unencrypted PEM private key (RSA for RS384, EC P-384 for ES384).")
    fhir_base_url: str = Field(description="The FHIR base; token_url is discovered from it when not given.")
    token_url: str | None = Field(
        default=None,
        description="Token endpoint; None: read token_endpoint from {base}/.well-known/smart-configuration.",
    )
    kid: str | None = Field(default=None, description="Key id in the assertion header; None: the JWK thumbprint.")
    alg: SigningAlg = "RS384"
    scope: str = "system/*.read"
    jku: str | None = Field(default=None, description="URL of the client's JWKS, sent in the assertion header.")

    @classmethod
    def from_key_file(cls, path: str | Path, **fields: Any) -> SmartCredentials:
        """Credentials whose private key is read from a PEM file; ``fields`` are the other fields."""
        return cls(private_key_pem=SecretStr(Path(path).read_text(encoding="utf-8")), **fields)


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float

    def __repr__(self) -> str:
        return f"_Token(value='**********', refresh_at={self.refresh_at})"


class SmartBackendAuth(httpx.Auth):
    """SMART Backend Services: fetch, cache and refresh an access token; sign every request with it.

    The token is reused until ``refresh_margin`` seconds before it expires (at most half its lifetime, so a
    short-lived token is still reused). A FHIR response 401 drops the token, fetches a new one and replays the
    request once. A lock per flavour (a thread lock for sync clients, an asyncio lock for async ones) makes
    concurrent requests wait for one token request instead of each sending their own. ``clock`` is wall-clock
    seconds; it dates both the cache and the assertion's ``exp``.
    """

    requires_request_body = True  # a replay after 401 must be able to send the body again
    requires_response_body = True  # token and discovery answers are read before they are parsed

    def __init__(
        self, credentials: SmartCredentials, *, refresh_margin: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        if refresh_margin < 0:
            raise ValueError("refresh_margin must be >= 0")
        try:
            self._key = load_signing_key(credentials.private_key_pem.get_secret_value(), credentials.alg)
        except ValueError as exc:
            raise FhirConfigError(f"SMART client {credentials.client_id!r}: {exc}") from exc
        self._credentials = credentials
        self._kid = credentials.kid or public_jwk(self._key, credentials.alg)["kid"]
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token_url = credentials.token_url
        self._token: _Token | None = None
        self._lock = threading.Lock()
        self._async_lock: asyncio.Lock | None = None
        self._async_lock_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    def __repr__(self) -> str:
        c = self._credentials
        return f"SmartBackendAuth(client_id={c.client_id!r}, alg={c.alg!r}, token_url={self._token_url!r})"

    @property
    def token_url(self) -> str | None:
        """The token endpoint, once configured or discovered."""
        return self._token_url

    def invalidate(self) -> None:
        """Forget the cached token; the next request fetches a new one."""
        self._token = None

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        rejected: str | None = None
        for _ in range(2):  # the request, then at most one replay after a 401
            with self._lock:
                steps = self._token_steps(rejected, request)
                reply: httpx.Response | None = None
                while True:
                    try:
                        step = steps.send(reply)  # type: ignore[arg-type]  # None starts the generator
                    except StopIteration as done:
                        token: str = done.value
                        break
                    reply = yield step
                    reply.read()
            request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            if response.status_code != 401:
                return
            rejected = token

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        rejected: str | None = None
        for _ in range(2):  # the request, then at most one replay after a 401
            async with self._loop_lock():
                steps = self._token_steps(rejected, request)
                reply: httpx.Response | None = None
                while True:
                    try:
                        step = steps.send(reply)  # type: ignore[arg-type]  # None starts the generator
                    except StopIteration as done:
                        token: str = done.value
                        break
                    reply = yield step
                    await reply.aread()
            request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            if response.status_code != 401:
                return
            rejected = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        return (yield from self.sync_auth_flow(request))

    def _loop_lock(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to one event loop; a sync facade may run this auth on a loop of its own.
        loop = asyncio.get_running_loop()
        if self._async_lock is None or self._async_lock_loop is None or self._async_lock_loop() is not loop:
            self._async_lock = asyncio.Lock()
            self._async_lock_loop = weakref.ref(loop)
        return self._async_lock

    def _token_steps(self, rejected: str | None, original: httpx.Request) -> TokenSteps:
        """Yield the discovery and token requests still needed (under the caller's lock); return the token."""
        cached = self._token
        if cached is not None and cached.value == rejected:
            self._token = cached = None
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.value
        extensions = _timeout_extension(original)
        if self._token_url is None:
            discovery = yield _discovery_request(self._credentials.fhir_base_url, extensions)
            self._token_url = _read_discovery(discovery)
        sent_at = self._clock()
        assertion = self._sign_assertion(self._token_url, sent_at)
        form = {
            "grant_type": "client_credentials",
            "scope": self._credentials.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        response = yield httpx.Request(
            "POST", self._token_url, data=form, headers={"Accept": "application/json"}, extensions=extensions
        )
        self._token = self._read_token(response, sent_at, assertion)
        return self._token.value

    def _sign_assertion(self, token_url: str, now: float) -> str:
        claims = {
            "iss": self._credentials.client_id,
            "sub": self._credentials.client_id,
            "aud": token_url,
            "exp": int(now) + ASSERTION_LIFETIME_S,
            "jti": str(uuid.uuid4()),
        }
        headers = {"typ": "JWT", "kid": self._kid}
        if self._credentials.jku:
            headers["jku"] = self._credentials.jku
        return jwt.encode(claims, self._key, algorithm=self._credentials.alg, headers=headers)

    def _read_token(self, response: httpx.Response, sent_at: float, assertion: str) -> _Token:
        if not response.is_success:
            error, description, message = _describe_oauth_error(response, [assertion])
            raise _auth_error(response, f"refused: {message}", error=error, description=description)
        body = _json_object(response)
        if body is None:
            raise _auth_error(response, "the answer is not a JSON object")
        access = body.get("access_token")
        if not isinstance(access, str) or not access or any(ch.isspace() for ch in access):
            raise _auth_error(response, "the answer has no usable access_token")
        token_type = body.get("token_type", "bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise _auth_error(response, "the answer's token_type is not bearer")
        expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN_S)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
            raise _auth_error(response, "the answer's expires_in is not a positive number")
        margin = min(self._refresh_margin, expires_in / 2)
        logger.debug("fetched SMART token, expires in %d s", int(expires_in))
        return _Token(value=access, refresh_at=sent_at + expires_in - margin)


def _timeout_extension(original: httpx.Request) -> dict[str, Any]:
    # Requests built here skip the client's request builder; without this they would have no timeout at all.
    timeout = original.extensions.get("timeout")
    return {"timeout": timeout} if timeout is not None else {}


def _discovery_request(fhir_base_url: str, extensions: dict[str, Any]) -> httpx.Request:
    url = fhir_base_url.rstrip("/") + "/.well-known/smart-configuration"
    return httpx.Request("GET", url, headers={"Accept": "application/json"}, extensions=extensions)


def _read_discovery(response: httpx.Response) -> str:
    if not response.is_success:
        _, _, message = _describe_oauth_error(response, [])
        raise _auth_error(response, f"refused: {message}")
    body = _json_object(response)
    endpoint = body.get("token_endpoint") if body is not None else None
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        raise _auth_error(response, "no absolute token_endpoint in the answer")
    return endpoint


def _auth_error(
    response: httpx.Response, problem: str, *, error: str | None = None, description: str | None = None
) -> AuthError:
    request = response.request
    what = "SMART discovery" if request.method == "GET" else "SMART token request"
    return AuthError(
        f"{what} {request.method} {request.url} {problem}",
        method=request.method,
        url=str(request.url),
        status=response.status_code,
        error=error,
        description=description,
    )


# A JWT (three base64url parts) or a long opaque run: the shapes a token or an echoed assertion would take.
_SECRET_SHAPES = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*|[\w+/=-]{40,}")
_MAX_TEXT = 300


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _describe_oauth_error(response: httpx.Response, known_secrets: list[str]) -> tuple[str | None, str | None, str]:
    """The OAuth ``error`` and ``error_description`` of a refusal, scrubbed, and a one-line message."""
    body = _json_object(response)
    error = _scrub(body.get("error"), known_secrets) if body else None
    description = _scrub(body.get("error_description"), known_secrets) if body else None
    message = f"HTTP {response.status_code}" + (f" {error}" if error else "")
    if description:
        message += f": {description}"
    if body is None:
        message += f" (not a JSON body: {_scrub(response.headers.get('content-type'), []) or 'no content type'})"
    return error, description, message


def _scrub(value: object, known_secrets: list[str]) -> str | None:
    """Server text made safe to show: secrets we sent and secret-shaped runs replaced, length capped."""
    if not isinstance(value, str) or not value:
        return None
    for secret in known_secrets:
        value = value.replace(secret, "[redacted]")
    value = _SECRET_SHAPES.sub("[redacted]", value)
    value = " ".join(value.split())
    return value if len(value) <= _MAX_TEXT else value[: _MAX_TEXT - 3] + "..."
