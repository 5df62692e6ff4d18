"""Validation at the boundary with `fhir.resources.R4B`: keep everything, say what failed.

Real R4 data (Synthea, EHRs) parses with the R4B models, not with the package-root R5 ones. A resource that fails
is kept as raw JSON with ``valid=False`` and a short ``problem`` (the first failing field), and a warning naming
``Type/id`` is logged; an unknown resourceType is kept the same way. Nothing is dropped and nothing raises.

Cost: R4B validation runs about 0.5 ms per Synthea resource, some 30x ``json.loads`` of the same JSON (one
344-resource bundle: 0.18 s against 6 ms). Verdicts are therefore cached by a digest of the resource's JSON (the
digest costs about 7% of a validation), so a record fetched again (a follow-up question, a re-query) is not
re-validated; ``validate=False`` on the client skips validation altogether.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from .resource import Resource

__all__ = ["clear_validation_cache", "to_resource", "validation_problem"]

logger = logging.getLogger(__name__)

_CACHE_SIZE = 16_384
_cache: OrderedDict[bytes, str | None] = OrderedDict()
_cache_lock = threading.Lock()
_PROBLEM_LIMIT = 200


def _digest(raw: Mapping[str, Any]) -> bytes:
    text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)[:_PROBLEM_LIMIT]
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "(resource)"
    message = " ".join(str(first.get("msg", "invalid")).split())[:_PROBLEM_LIMIT]
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}"


def _check(raw: Mapping[str, Any]) -> str | None:
    resource_type = raw.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        return "no resourceType"
    try:
        model = get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError, ImportError):
        return f"unknown resourceType {resource_type!r} (not an R4B resource)"
    try:
        model.model_validate(raw)
    except ValidationError as exc:
        return _first_error(exc)
    except (ValueError, TypeError) as exc:  # validators outside pydantic's wrapping
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:_PROBLEM_LIMIT]}"
    return None


def clear_validation_cache() -> None:
    """Forget every cached verdict (for measuring a first fetch, or after upgrading fhir.resources)."""
    with _cache_lock:
        _cache.clear()


def validation_problem(raw: Mapping[str, Any]) -> str | None:
    """Why ``raw`` is not a valid R4B resource (short text), or None; cached by content digest."""
    key = _digest(raw)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    problem = _check(raw)
    with _cache_lock:
        _cache[key] = problem
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return problem


def to_resource(raw: dict[str, Any], *, validate: bool = True, search_mode: str | None = None) -> Resource:
    """Wrap raw JSON as a `Resource`; with ``validate`` an invalid one is kept, flagged and logged."""
    resource_type = raw.get("resourceType") if isinstance(raw.get("resourceType"), str) else ""
    rid = raw.get("id") if isinstance(raw.get("id"), str) else None
    meta = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
    version = meta.get("versionId") if isinstance(meta.get("versionId"), str) else None
    problem = validation_problem(raw) if validate else None
    if problem is not None:
        label = f"{resource_type or 'resource'}/{rid}" if rid else (resource_type or "resource without type")
        logger.warning("kept invalid FHIR resource %s: %s", label, problem)
    return Resource(
        raw=raw,
        resource_type=resource_type or "",
        id=rid,
        version=version,
        valid=problem is None,  # not validated counts as valid: nothing known against it
        problem=problem,
        search_mode=search_mode,
    )
