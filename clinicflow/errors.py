"""Which errors a user can act on, and how to say them in one line at the terminal."""

from __future__ import annotations


def user_facing(exc: BaseException) -> str | None:
    """A one-line message for errors caused by input or set-up; None for bugs, which keep their traceback."""
    from agents.backends import BackendError
    from clinicflow.wiring import CaseRefError
    from simulations.cases import CaseFormatError

    if isinstance(exc, (BackendError, CaseFormatError, CaseRefError, FileNotFoundError, LookupError)):
        return str(exc)
    return None
