"""Fixtures of the command-line tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clinicflow.scripted_server import serve


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """The scripted model server, one per test module."""
    yield from serve()
