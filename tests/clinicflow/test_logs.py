"""The command line's log handler scrubs configured secrets and credential-shaped text before printing."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from pydantic import SecretStr
from rich.console import Console

from clinicflow.logs import configure_logging
from clinicflow.settings import Settings


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configured_secrets_and_bearer_headers_never_reach_the_terminal() -> None:
    settings = Settings()
    settings.fhir.token = SecretStr("fhir-token-9f8e7d6c")
    settings.openai_api_key = SecretStr("sk-openai-1a2b3c4d")
    out = io.StringIO()
    configure_logging(settings, Console(file=out, width=200))
    configure_logging(settings, Console(file=out, width=200))  # a second call replaces, not stacks
    logger = logging.getLogger("tools.fhir.test")
    logger.warning("request failed with token %s and key %s", "fhir-token-9f8e7d6c", "sk-openai-1a2b3c4d")
    logger.warning("headers were {'Authorization': 'Bearer abc.def.ghi'}")
    text = out.getvalue()
    assert "request failed" in text and text.count("request failed") == 1
    assert "fhir-token-9f8e7d6c" not in text and "sk-openai-1a2b3c4d" not in text and "abc.def.ghi" not in text
