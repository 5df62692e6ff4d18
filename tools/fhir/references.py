"""Parsing and checking FHIR references and ids before they become URL paths.

An id that a model or a record supplies ends up in a path, so it is checked against the FHIR id grammar
(``[A-Za-z0-9-.]{1,64}``, and never ``.`` or ``..``); a type must look like a resource type. Anything else is
an `InvalidRequestError` rather than a request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidRequestError
from .urls import BaseUrl, path_under_base

__all__ = ["ParsedReference", "check_id", "check_type", "parse_reference"]

_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class ParsedReference:
    """``Type/id`` with an optional version (``Type/id/_history/version``)."""

    resource_type: str
    id: str
    version: str | None = None

    @property
    def path(self) -> str:
        """The path under the base: ``Type/id`` or ``Type/id/_history/version``."""
        tail = f"/_history/{self.version}" if self.version else ""
        return f"{self.resource_type}/{self.id}{tail}"


def check_type(resource_type: str) -> str:
    """The resource type, if it looks like one (``Patient``, ``MedicationRequest``)."""
    if not isinstance(resource_type, str) or not _TYPE.match(resource_type):
        raise InvalidRequestError(f"{resource_type!r} is not a FHIR resource type")
    return resource_type


def check_id(value: str, what: str = "id") -> str:
    """A FHIR id (also used for version ids); refuses anything that could alter a path."""
    if not isinstance(value, str) or not _ID.match(value) or value in (".", ".."):
        raise InvalidRequestError(f"{value!r} is not a valid FHIR {what}")
    return value


def _from_path(path: str, original: str) -> ParsedReference:
    parts = path.strip("/").split("/")
    if len(parts) == 2:
        return ParsedReference(check_type(parts[0]), check_id(parts[1]))
    if len(parts) == 4 and parts[2] == "_history":
        return ParsedReference(check_type(parts[0]), check_id(parts[1]), check_id(parts[3], "version id"))
    raise InvalidRequestError(f"{original!r} is not a reference of the form Type/id or Type/id/_history/version")


def parse_reference(base: BaseUrl, reference: str) -> ParsedReference:
    """Parse ``Type/id``, ``Type/id/_history/v`` or an absolute URL under the base (else `UrlOutsideBaseError`).

    Contained (``#id``) and bundle-local (``urn:uuid:``) references name no server resource and are refused.
    """
    if not isinstance(reference, str) or not reference.strip():
        raise InvalidRequestError(f"{reference!r} is not a reference")
    text = reference.strip()
    if text.startswith("#"):
        raise InvalidRequestError(f"{text!r} is a contained reference: read it from the resource that contains it")
    if text.lower().startswith(("urn:uuid:", "urn:oid:")):
        raise InvalidRequestError(f"{text!r} is a bundle-local reference with no server address")
    if _HAS_SCHEME.match(text) or text.startswith("/"):
        path, query = path_under_base(base, text)
        if query:
            raise InvalidRequestError(f"{text!r} is a search, not a reference (use search or get_url)")
        return _from_path(path, text)
    if "?" in text:
        raise InvalidRequestError(f"{text!r} is a search, not a reference (use search or get_url)")
    return _from_path(text, text)
