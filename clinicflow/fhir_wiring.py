"""Wiring for FHIR: which server to talk to, with which credentials, and the record a consultation reads.

The base URL comes from, in order: the command line, the settings (``CLINICFLOW_FHIR__BASE_URL`` or ``[fhir]`` in
the config file), or a ``clinicflow fhir serve`` running on this machine (it announces itself in a small file in the
data directory). Credentials come only from settings or options and go straight into the auth object; they are
never part of a client's repr, a log line or the checkpointed origin of a consultation.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import httpx
from langchain_core.language_models import BaseChatModel

from agents.navigator import Navigator
from clinicflow.settings import FhirSettings, Settings
from graphs.fhir_store import FhirRecordStore
from graphs.record_qa import RecordAnswer
from graphs.record_qa import ask_record as ask_with_graph
from graphs.store_lookup import StoreRecordLookup
from tools.fhir import ClientLimits, FhirClient
from tools.fhir.auth import BearerTokenAuth, SmartBackendAuth, SmartCredentials

ANNOUNCE_FILE = "server.json"


class FhirSetupError(ValueError):
    """FHIR access is configured in a way that cannot work (missing base URL, token, key...)."""


@dataclass(frozen=True)
class ServedInstance:
    """A ``clinicflow fhir serve`` process announced in the data directory."""

    base_url: str
    pid: int


def announce_server(settings: Settings, base_url: str, pid: int) -> Path:
    path = settings.fhir_server_dir / ANNOUNCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"base_url": base_url, "pid": pid}), encoding="utf-8")
    os.replace(tmp, path)
    return path


def withdraw_announcement(settings: Settings, pid: int) -> None:
    path = settings.fhir_server_dir / ANNOUNCE_FILE
    served = _read_announcement(path)
    if served is not None and served.pid == pid:
        path.unlink(missing_ok=True)


def _read_announcement(path: Path) -> ServedInstance | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ServedInstance(base_url=str(data["base_url"]), pid=int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_demo_server(settings: Settings) -> str | None:
    """The base URL of a ``clinicflow fhir serve`` running on this machine that answers, else None."""
    served = _read_announcement(settings.fhir_server_dir / ANNOUNCE_FILE)
    if served is None or not _alive(served.pid):
        return None
    try:
        response = httpx.get(f"{served.base_url}/metadata", timeout=2.0,
                             headers={"Accept": "application/fhir+json"})
    except httpx.HTTPError:
        return None
    return served.base_url if response.status_code == 200 else None


def resolve_base_url(settings: Settings, override: str | None = None, *, use_local_server: bool = True) -> str | None:
    """The FHIR base URL to use, or None when nothing is configured and no local server runs."""
    if override:
        return override
    if settings.fhir.base_url:
        return settings.fhir.base_url
    return running_demo_server(settings) if use_local_server else None


def build_auth(fhir: FhirSettings, base_url: str) -> httpx.Auth | None:
    """The httpx auth for the configured scheme; a missing credential is a clear error, not a 401 later."""
    if fhir.auth == "none":
        return None
    if fhir.auth == "bearer":
        if fhir.token is None:
            raise FhirSetupError("fhir.auth is 'bearer' but no token is set (CLINICFLOW_FHIR__TOKEN)")
        return BearerTokenAuth(fhir.token)
    missing = [name for name, value in (("client_id", fhir.client_id), ("private_key_file", fhir.private_key_file))
               if not value]
    if missing:
        raise FhirSetupError(f"fhir.auth is 'smart' but {', '.join(missing)} is not set "
                             f"(CLINICFLOW_FHIR__{missing[0].upper()})")
    assert fhir.client_id is not None and fhir.private_key_file is not None
    try:
        key_file_ok = fhir.private_key_file.is_file()
    except OSError:
        key_file_ok = False
    if not key_file_ok:
        raise FhirSetupError(f"fhir.private_key_file {fhir.private_key_file} is not a readable file")
    credentials = SmartCredentials.from_key_file(
        fhir.private_key_file,
        client_id=fhir.client_id,
        fhir_base_url=base_url,
        token_url=fhir.token_url,
        kid=fhir.key_id,
        alg=fhir.algorithm,
        scope=fhir.scope,
    )
    return SmartBackendAuth(credentials)


def open_fhir_client(settings: Settings, base_url: str) -> FhirClient:
    """A client for ``base_url`` with the configured auth and limits (use it as an async context manager)."""
    fhir = settings.fhir
    return FhirClient(
        base_url,
        auth=build_auth(fhir, base_url),
        timeout=fhir.timeout_s,
        limits=ClientLimits(max_concurrency=fhir.max_concurrency, max_pages=fhir.max_pages,
                            max_resources=fhir.max_resources),
        allow_writes=fhir.allow_writes,
        validate=fhir.validate_resources,
    )


@asynccontextmanager
async def open_record_lookup(
    settings: Settings,
    base_url: str,
    patient_id: str,
    model: BaseChatModel,
    *,
    now: date | datetime | None = None,
) -> AsyncIterator[StoreRecordLookup]:
    """The record a consultation reads: the patient on ``base_url``, answered by a navigator on ``model``."""
    async with open_fhir_client(settings, base_url) as client:
        yield StoreRecordLookup(
            FhirRecordStore(client),
            Navigator(model),
            patient_id,
            now=now,
            summary_tokens=settings.fhir.summary_tokens,
        )


async def ask_record(
    settings: Settings,
    base_url: str,
    patient_id: str,
    question: str,
    model: BaseChatModel,
    *,
    now: date | datetime | None = None,
) -> RecordAnswer:
    """One question answered from the patient's record, with checked citations (``clinicflow fhir ask``)."""
    async with open_fhir_client(settings, base_url) as client:
        return await ask_with_graph((Navigator(model), FhirRecordStore(client)), patient_id, question, now)
