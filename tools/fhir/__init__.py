"""An async FHIR R4 client over httpx, with a blocking facade, confined to one base URL and read-only by default.

Errors live in `tools.fhir.errors` (the tree is in its docstring); search builders in `tools.fhir.search`;
log and URL redaction in `tools.fhir.redaction`; auth (a static bearer token, SMART Backend Services) in
`tools.fhir.auth`, as `httpx.Auth` objects passed to the client.
"""

from .auth import BearerTokenAuth, SmartBackendAuth, SmartCredentials
from .client import FhirClient
from .limits import ClientLimits
from .patient_record import PATIENT_COMPARTMENT_TYPES
from .redaction import RedactingFilter, redact_url
from .resource import Resource, SearchResult
from .retry import RetryPolicy
from .search import date_range, merge_params, search_controls
from .sync import SyncFhirClient

__all__ = [
    "PATIENT_COMPARTMENT_TYPES",
    "BearerTokenAuth",
    "ClientLimits",
    "FhirClient",
    "RedactingFilter",
    "Resource",
    "RetryPolicy",
    "SearchResult",
    "SmartBackendAuth",
    "SmartCredentials",
    "SyncFhirClient",
    "date_range",
    "merge_params",
    "redact_url",
    "search_controls",
]
