"""Fetching a patient's whole record: ``Patient/$everything`` where offered, per-type searches otherwise.

The server's CapabilityStatement decides: when it lists the ``everything`` operation (on Patient or at system
level) the client calls it and follows its pages. Otherwise, or when the call itself answers 404/405/501 or
an OperationOutcome saying ``not-supported``, it reads the Patient and searches each patient-compartment type with
``patient=<id>`` concurrently (the client's semaphore bounds how many run at once). A type the server rejects
(400/404/405/501) is skipped with a warning; auth failures, timeouts and server errors propagate.

A server that does not know a type's ``patient`` parameter may ignore it and answer with every patient's
resources (sekmet 0.1.1 does this for FamilyMemberHistory, with only a warning entry). So each resource a
per-type search returns must point at the patient (``subject``, ``patient`` or ``beneficiary``); others are
dropped with a warning: one patient's record must never carry another's data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Literal

from .capability import offered_types, operation_listed
from .errors import (
    FhirAuthError,
    FhirError,
    FhirStatusError,
    NotFhirResponseError,
    ResourceNotFoundError,
)
from .references import check_id, check_type
from .resource import Resource, SearchResult
from .search import merge_params, search_controls

if TYPE_CHECKING:
    from .client import FhirClient

__all__ = ["PATIENT_COMPARTMENT_TYPES", "RecordStrategy", "belongs_to_patient", "fetch_patient_record"]

logger = logging.getLogger(__name__)

PATIENT_COMPARTMENT_TYPES: tuple[str, ...] = (
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationAdministration",
    "Observation",
    "DiagnosticReport",
    "Encounter",
    "Procedure",
    "Immunization",
    "CarePlan",
    "CareTeam",
    "Goal",
    "ServiceRequest",
    "Device",
    "ImagingStudy",
    "DocumentReference",
)
"""What the fallback searches by default: the clinically useful part of the Patient compartment. Claim and
ExplanationOfBenefit are left out (billing, and the bulk of a Synthea record); pass ``types`` to include them."""

_UNSUPPORTED_STATUSES = frozenset({400, 404, 405, 501})


def _unsupported(exc: FhirError) -> bool:
    """Does this error mean "the server does not do that" (so a fallback is right), not a real failure?"""
    if isinstance(exc, FhirAuthError) or not isinstance(exc, FhirStatusError):
        return False
    return exc.status in _UNSUPPORTED_STATUSES or any(i.code == "not-supported" for i in exc.issues)


_PATIENT_LINKS = ("subject", "patient", "beneficiary")


def belongs_to_patient(raw: dict[str, object], patient_id: str) -> bool:
    """Does this resource name ``Patient/<patient_id>`` as its subject, patient or beneficiary?"""
    for key in _PATIENT_LINKS:
        link = raw.get(key)
        reference = link.get("reference") if isinstance(link, dict) else None
        if isinstance(reference, str) and reference.rstrip("/").split("/_history/")[0].endswith(f"Patient/{patient_id}"):
            return True
    return False


def _keep_own(part: SearchResult, patient_id: str, label: str) -> SearchResult:
    foreign = [r for r in part.resources if not belongs_to_patient(r.raw, patient_id)]
    if foreign:
        part.resources = [r for r in part.resources if belongs_to_patient(r.raw, patient_id)]
        message = (f"{len(foreign)} resources not linked to Patient/{patient_id} dropped "
                   "(the server may have ignored the patient parameter)")
        part.warnings.append(message)
        logger.warning("%s search: %s", label, message)
    return part


def _merge(into: SearchResult, part: SearchResult, label: str, seen: set[tuple[str, str | None]]) -> None:
    for source, target in ((part.resources, into.resources), (part.included, into.included)):
        for resource in source:
            key = (resource.resource_type, resource.id)
            if resource.id is None or key not in seen:
                seen.add(key)
                target.append(resource)
    into.pages += part.pages
    into.truncated = into.truncated or part.truncated
    into.warnings.extend(f"{label}: {w}" for w in part.warnings)


async def _via_everything(client: FhirClient, patient_id: str, types: Sequence[str] | None) -> SearchResult:
    page_size = client.limits.page_size
    params = search_controls(count=page_size, types=types or ())
    result = await client.search_url(f"Patient/{patient_id}/$everything", params)
    if types:  # servers may ignore _type; the caller asked for these types only
        wanted = {*types, "Patient"}
        result.resources = [r for r in result.resources if r.resource_type in wanted]
        result.included = [r for r in result.included if r.resource_type in wanted]
    merged = SearchResult(total=result.total)
    _merge(merged, result, "$everything", set())
    return merged


async def _guarded(coro: Awaitable[SearchResult]) -> SearchResult | FhirError:
    try:
        return await coro
    except FhirError as exc:
        return exc


async def _read_patient(client: FhirClient, patient_id: str) -> SearchResult:
    patient: Resource = await client.read("Patient", patient_id)
    return SearchResult(resources=[patient], total=1)


async def _via_searches(
    client: FhirClient, patient_id: str, types: Sequence[str] | None, offered: frozenset[str]
) -> SearchResult:
    wanted = [t for t in (types or PATIENT_COMPARTMENT_TYPES) if t != "Patient"]
    result = SearchResult()
    if offered:
        skipped = [t for t in wanted if t not in offered]
        if skipped:
            result.warnings.append(f"not searched (absent from the server's CapabilityStatement): {', '.join(skipped)}")
        wanted = [t for t in wanted if t in offered]
    controls = search_controls(count=client.limits.page_size)
    async with asyncio.TaskGroup() as group:
        patient_task = group.create_task(_guarded(_read_patient(client, patient_id)))
        tasks = {
            t: group.create_task(_guarded(client.search(t, merge_params({"patient": patient_id}, controls))))
            for t in wanted
        }
    patient = patient_task.result()
    if isinstance(patient, FhirError):
        raise patient
    seen: set[tuple[str, str | None]] = set()
    _merge(result, patient, "Patient", seen)
    for resource_type, task in tasks.items():
        part = task.result()
        if isinstance(part, FhirError):
            if not _unsupported(part):
                raise part
            result.warnings.append(f"{resource_type}: search failed and was skipped: {part}")
            logger.warning("%s search for the patient record skipped: %s", resource_type, part)
            continue
        _merge(result, _keep_own(part, patient_id, resource_type), resource_type, seen)
    result.total = None  # per-type totals do not add up to a compartment total once types are skipped
    return result


RecordStrategy = Literal["auto", "everything", "searches"]


async def fetch_patient_record(
    client: FhirClient, patient_id: str, *, types: Sequence[str] | None = None, strategy: RecordStrategy = "auto"
) -> SearchResult:
    """The patient and their record as one `SearchResult` (the Patient first, then matches by type).

    ``strategy``: ``auto`` follows the CapabilityStatement; ``everything`` calls ``$everything`` whatever it says
    (with the same fallback on "not supported"); ``searches`` always uses the per-type searches.
    """
    check_id(patient_id, "patient id")
    for resource_type in types or ():
        check_type(resource_type)
    try:
        capabilities = await client.capabilities()
    except (FhirStatusError, NotFhirResponseError) as exc:
        if isinstance(exc, FhirAuthError):
            raise
        logger.warning("no usable CapabilityStatement (%s); searching type by type", exc)
        capabilities = {}
    offered = offered_types(capabilities)
    use_everything = strategy == "everything" or (
        strategy == "auto" and operation_listed(capabilities, "Patient", "everything"))
    if use_everything:
        try:
            return await _via_everything(client, patient_id, types)
        except FhirStatusError as exc:
            if not _unsupported(exc):
                raise
            if isinstance(exc, ResourceNotFoundError):
                # A 404 may mean "no such patient" rather than "no such operation": that is the answer, if so.
                await client.read("Patient", patient_id)
            logger.warning("Patient/$everything failed (%s); searching type by type", exc)
            result = await _via_searches(client, patient_id, types, offered)
            result.warnings.insert(0, f"Patient/$everything failed, per-type searches used instead: {exc}")
            return result
    return await _via_searches(client, patient_id, types, offered)
