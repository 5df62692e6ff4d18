"""Loading transaction bundles into a FHIR server with their resource ids kept.

Synthea writes transactions of ``POST`` entries linked by ``urn:uuid:`` references, so a server would give every
resource a new id. ``keep_ids_transaction`` rewrites them into ``PUT Type/id`` entries with ``Type/id`` references,
which makes loading idempotent and lets tests and users find a patient by the id in the file.

This is the admin path: it writes, on purpose, with plain httpx, and is never used by the read-only client in
``tools.fhir``. Errors are in ``tools.fhirserver.errors`` (``BundleRewriteError``, ``BundleLoadError``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tools.fhirserver.errors import BundleLoadError, BundleRewriteError

BundleSource = str | Path | Mapping[str, Any]

_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_URN_UUID = "urn:uuid:"
# Ids made up for entries that carry none: stable across runs for the same bundle.
_ID_NAMESPACE = uuid.UUID("9b0c6a2e-4c1d-5d3e-8f7a-2b6c1d0e9f31")
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class BundleResult:
    """What one bundle put into the server."""

    source: str
    entries: int
    created: int
    updated: int
    seconds: float
    types: dict[str, int]
    patient_ids: tuple[str, ...]


@dataclass
class LoadReport:
    """Every bundle loaded by one ``load_bundles`` call, and its wall time."""

    base_url: str
    bundles: list[BundleResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def resources(self) -> int:
        return sum(b.entries for b in self.bundles)

    @property
    def patient_ids(self) -> list[str]:
        return [pid for b in self.bundles for pid in b.patient_ids]

    def counts(self) -> dict[str, int]:
        """Resources per type over all bundles (shared resources loaded twice count twice)."""
        total: Counter[str] = Counter()
        for b in self.bundles:
            total.update(b.types)
        return dict(sorted(total.items()))

    def summary(self) -> str:
        return (
            f"{len(self.bundles)} bundles, {self.resources} resources, {len(self.patient_ids)} patients "
            f"in {self.seconds:.1f} s into {self.base_url}"
        )


def keep_ids_transaction(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a transaction bundle whose POST entries are ``PUT Type/id`` and whose references are ``Type/id``.

    The id comes from the resource; an entry without one gets the uuid of its ``urn:uuid:`` fullUrl, or a
    deterministic uuid5 of its content. Every ``reference`` anywhere in a resource (contained resources and nested
    elements included) that names an entry's fullUrl becomes that entry's ``Type/id``. Entries already PUT, and
    non-write entries, are kept. Raises ``BundleRewriteError`` for a ``urn:uuid:`` reference that matches no
    entry, or two entries for the same ``Type/id``.
    """
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise BundleRewriteError("not a FHIR Bundle")
    if bundle.get("type") not in ("transaction", "batch"):
        raise BundleRewriteError(f"Bundle.type must be transaction or batch, not {bundle.get('type')!r}")
    out = copy.deepcopy(dict(bundle))
    entries = out.get("entry") or []
    targets: dict[str, str] = {}
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        resource = entry.get("resource")
        request = entry.get("request") or {}
        method = str(request.get("method", "")).upper()
        if not isinstance(resource, dict) or method not in ("POST", "PUT") or _is_operation(request.get("url", "")):
            continue
        if method == "PUT" and _put_id(request) is None:
            # A conditional update: only the server knows which resource it hits, so it resolves references to it.
            if isinstance(entry.get("fullUrl"), str):
                targets[entry["fullUrl"]] = entry["fullUrl"]
            continue
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or not rtype:
            raise BundleRewriteError(f"entry {index}: resource without a resourceType")
        rid = _put_id(request) or resource.get("id") or _made_up_id(entry, rtype, index)
        if not _ID_RE.match(str(rid)):
            raise BundleRewriteError(f"entry {index}: {rid!r} is not a valid FHIR id")
        key = f"{rtype}/{rid}"
        if key in seen:
            raise BundleRewriteError(f"entries {seen[key]} and {index} both write {key}")
        seen[key] = index
        resource["id"] = rid
        entry["request"] = {"method": "PUT", "url": key}
        if isinstance(entry.get("fullUrl"), str):
            targets[entry["fullUrl"]] = key
    for index, entry in enumerate(entries):
        resource = entry.get("resource")
        if isinstance(resource, dict):
            _rewrite_references(resource, targets, index)
    return out


def bundles_fingerprint(sources: Iterable[BundleSource]) -> str:
    """A sha256 over the bundles' canonical JSON: the same bundles in the same order give the same value."""
    digest = hashlib.sha256()
    for _label, bundle in _read_all(sources):
        digest.update(json.dumps(bundle, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def load_bundles(
    base_url: str,
    sources: Iterable[BundleSource],
    *,
    concurrency: int = 4,
    keep_ids: bool = True,
    timeout: float = 300.0,
    http: httpx.Client | None = None,
) -> LoadReport:
    """POST each transaction bundle (files or dicts) to ``base_url``, up to ``concurrency`` at a time.

    With ``keep_ids`` each bundle goes through ``keep_ids_transaction`` first. The first refusal stops the load
    (bundles not yet sent are not sent) and raises ``BundleLoadError`` naming the file and carrying the server's
    OperationOutcome. Without an ``http`` client, one is made that ignores proxy variables for loopback servers.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    base = base_url.rstrip("/")
    owned = http is None
    client = http or httpx.Client(timeout=timeout, trust_env=urlsplit(base).hostname not in _LOOPBACK)
    report = LoadReport(base_url=base)
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fhir-load") as pool:
            futures: list[Future[BundleResult]] = [
                pool.submit(_post_bundle, client, base, label, bundle, keep_ids) for label, bundle in _read_all(sources)
            ]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:
                for future in pending:
                    future.cancel()
                failed[0].result()  # raises the BundleLoadError
            report.bundles = [f.result() for f in futures]
    finally:
        if owned:
            client.close()
    report.seconds = time.perf_counter() - started
    return report


# ---------------- internals ----------------


def _read_all(sources: Iterable[BundleSource]) -> Iterator[tuple[str, dict[str, Any]]]:
    for index, source in enumerate(sources):
        if isinstance(source, Mapping):
            yield f"bundle[{index}] {source.get('id') or ''}".strip(), dict(source)
            continue
        path = Path(source)
        try:
            data = json.loads(path.read_bytes())
        except OSError as exc:
            raise BundleLoadError(str(path), f"cannot read the file: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise BundleLoadError(str(path), f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
        if not isinstance(data, dict):
            raise BundleLoadError(str(path), "not a JSON object")
        yield str(path), data


def _post_bundle(client: httpx.Client, base: str, label: str, bundle: dict[str, Any], keep_ids: bool) -> BundleResult:
    try:
        body = keep_ids_transaction(bundle) if keep_ids else bundle
    except BundleRewriteError as exc:
        raise BundleLoadError(label, str(exc)) from exc
    entries = body.get("entry") or []
    written = [e["resource"] for e in entries if isinstance(e.get("resource"), dict)]
    types = Counter(r.get("resourceType") for r in written)
    patients = tuple(r["id"] for r in written if r.get("resourceType") == "Patient" and r.get("id"))
    started = time.perf_counter()
    try:
        response = client.post(
            base,
            content=json.dumps(body, separators=(",", ":")).encode(),
            headers={
                "Content-Type": "application/fhir+json",
                "Accept": "application/fhir+json",
                # entry responses without the resources echoed back: a third of the time on big bundles
                "Prefer": "return=minimal",
            },
        )
    except httpx.TransportError as exc:
        raise BundleLoadError(label, f"could not reach {base}: {exc.__class__.__name__}: {exc}") from exc
    seconds = time.perf_counter() - started
    answer = _json_or_none(response)
    if response.status_code >= 400 or not isinstance(answer, dict) or answer.get("resourceType") != "Bundle":
        outcome = answer if isinstance(answer, dict) and answer.get("resourceType") == "OperationOutcome" else None
        detail = _outcome_text(outcome) if outcome else (response.text[:300] or "empty body")
        status = response.status_code
        raise BundleLoadError(label, f"HTTP {status}: {detail}", status=status, outcome=outcome)
    statuses = [str((e.get("response") or {}).get("status", "")) for e in answer.get("entry") or []]
    return BundleResult(
        source=label,
        entries=len(entries),
        created=sum(s.startswith("201") for s in statuses),
        updated=sum(s.startswith("200") for s in statuses),
        seconds=seconds,
        types=dict(types),
        patient_ids=patients,
    )


def _rewrite_references(node: Any, targets: Mapping[str, str], index: int) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                if value in targets:
                    node[key] = targets[value]
                elif value.startswith(_URN_UUID):
                    raise BundleRewriteError(f"entry {index}: reference {value!r} matches no entry's fullUrl")
            else:
                _rewrite_references(value, targets, index)
    elif isinstance(node, list):
        for item in node:
            _rewrite_references(item, targets, index)


def _is_operation(url: str) -> bool:
    return any(part.startswith("$") for part in url.split("?")[0].split("/"))


def _put_id(request: Mapping[str, Any]) -> str | None:
    """The id of a ``PUT Type/id`` request (None for POST and conditional updates)."""
    if str(request.get("method", "")).upper() != "PUT" or "?" in str(request.get("url", "")):
        return None
    parts = [p for p in str(request.get("url", "")).split("?")[0].split("/") if p]
    return parts[1] if len(parts) == 2 else None


def _made_up_id(entry: Mapping[str, Any], rtype: str, index: int) -> str:
    full_url = entry.get("fullUrl")
    if isinstance(full_url, str) and full_url.startswith(_URN_UUID) and _ID_RE.match(full_url[len(_URN_UUID):]):
        return full_url[len(_URN_UUID):]
    content = json.dumps(entry.get("resource"), sort_keys=True, separators=(",", ":"))
    return str(uuid.uuid5(_ID_NAMESPACE, f"{rtype}|{index}|{content}"))


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _outcome_text(outcome: Mapping[str, Any]) -> str:
    issues = outcome.get("issue") or []
    texts = [
        f"{i.get('severity', '?')}: {i.get('diagnostics') or (i.get('details') or {}).get('text') or i.get('code')}"
        for i in issues[:5]
    ]
    more = f" (+{len(issues) - 5} more)" if len(issues) > 5 else ""
    return "; ".join(texts) + more if texts else "OperationOutcome without issues"
