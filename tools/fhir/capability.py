"""Pure questions about a CapabilityStatement: which operations and resource types a server offers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["offered_types", "operation_listed"]


def _rest(capabilities: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for rest in capabilities.get("rest") or []:
        if isinstance(rest, dict) and rest.get("mode", "server") == "server":
            yield rest


def _names_match(entry: Any, resource_type: str, operation: str) -> bool:
    if not isinstance(entry, dict):
        return False
    name = str(entry.get("name") or "").lstrip("$").lower()
    definition = str(entry.get("definition") or "").lower()
    op = operation.lstrip("$").lower()
    # Servers name it "everything", "$everything" or "patient-everything"; the definition URL ends in
    # OperationDefinition/Patient-everything.
    return name in (op, f"{resource_type.lower()}-{op}") or definition.endswith(f"/{resource_type.lower()}-{op}")


def operation_listed(capabilities: Mapping[str, Any], resource_type: str, operation: str) -> bool:
    """Does the statement list ``operation`` on ``resource_type`` (or at system level)?"""
    for rest in _rest(capabilities):
        for resource in rest.get("resource") or []:
            if (
                isinstance(resource, dict)
                and resource.get("type") == resource_type
                and any(_names_match(e, resource_type, operation) for e in resource.get("operation") or [])
            ):
                return True
        if any(_names_match(e, resource_type, operation) for e in rest.get("operation") or []):
            return True
    return False


def offered_types(capabilities: Mapping[str, Any]) -> frozenset[str]:
    """The resource types the server lists (empty when it lists none: then nothing can be ruled out)."""
    return frozenset(
        str(resource["type"])
        for rest in _rest(capabilities)
        for resource in rest.get("resource") or []
        if isinstance(resource, dict) and isinstance(resource.get("type"), str)
    )
