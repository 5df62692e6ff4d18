from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import ImageServer


@pytest.fixture
def server() -> Iterator[ImageServer]:
    image_server = ImageServer()
    yield image_server
    image_server.stop()
