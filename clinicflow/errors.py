"""Which errors the command line reports as a one-line message, and which keep their traceback (bugs)."""

from __future__ import annotations


def user_facing(exc: BaseException) -> str | None:
    """A one-line message for errors caused by input, set-up or a remote server; None for bugs."""
    from agents.backends import BackendError
    from clinicflow.fhir_wiring import FhirSetupError
    from clinicflow.wiring import CaseRefError
    from graphs.checkpointers import CheckpointerError
    from graphs.record_store import RecordStoreError
    from simulations.bench import ConfigMismatchError, DatasetError, RunDirError
    from simulations.bench.callcache import CallCacheError
    from simulations.cases import CaseFormatError
    from tools.fhir.errors import FhirError
    from tools.fhirserver.errors import FhirServerError
    from tools.images import ImageError

    # ImageError subclasses name the file or URL they are about; ModelSpecError (a BackendError) names the spec.
    expected = (BackendError, CallCacheError, CaseFormatError, CaseRefError, CheckpointerError, ConfigMismatchError,
                DatasetError, FhirError, FhirServerError, FhirSetupError, ImageError, RecordStoreError, RunDirError,
                FileNotFoundError, LookupError)
    if isinstance(exc, expected):
        return str(exc)
    return None
