"""A local FHIR R4 server for demos and tests: sekmet-fhir on 127.0.0.1, and bundle loading with ids kept.

The loader writes (it is the admin path); the read-only client lives in ``tools.fhir``.
"""

from tools.fhirserver.errors import (
    BundleLoadError,
    BundleRewriteError,
    FhirServerError,
    ServerConfigError,
    ServerStartError,
)
from tools.fhirserver.loading import (
    BundleResult,
    LoadReport,
    bundles_fingerprint,
    keep_ids_transaction,
    load_bundles,
)
from tools.fhirserver.sekmet import SekmetServer, free_port

__all__ = [
    "BundleLoadError",
    "BundleResult",
    "BundleRewriteError",
    "FhirServerError",
    "LoadReport",
    "SekmetServer",
    "ServerConfigError",
    "ServerStartError",
    "bundles_fingerprint",
    "free_port",
    "keep_ids_transaction",
    "load_bundles",
]
