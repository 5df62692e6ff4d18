"""Logging for the command line: warnings to stderr through rich, every record scrubbed of secrets first."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

from clinicflow.settings import Settings
from tools.fhir.redaction import RedactingFilter

_HANDLER_NAME = "clinicflow-cli"


def configure_logging(settings: Settings, console: Console, *, level: int = logging.WARNING) -> RedactingFilter:
    """One stderr handler on the root logger (replaced, not stacked, on a second call) that redacts the
    configured secrets and anything shaped like a credential before it is printed."""
    secrets = [s.get_secret_value() for s in (settings.fhir.token, settings.openai_api_key) if s is not None]
    redacting = RedactingFilter(secrets)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False, rich_tracebacks=False)
    handler.set_name(_HANDLER_NAME)
    handler.setLevel(level)
    handler.addFilter(redacting)
    root.addHandler(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    return redacting
