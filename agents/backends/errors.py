"""Errors raised by the chat-model backends.

Every failure a backend reports is a `BackendError`, so a caller (a graph node, the simulation runner) can record
it against the sample with one `except` clause and still tell the kinds apart::

    BackendError
    ├── ModelSpecError         the spec string is malformed, or asks for something refused (fp16 for Gemma)
    ├── ModelLoadError         local weights or the embedded checkpoint could not be found, converted or loaded
    ├── UnsupportedInputError  the messages carry something this backend cannot take (an image for a text model)
    ├── ModelRequestError      an OpenAI-compatible server refused the request (4xx other than 429)
    ├── ModelUnavailableError  the server could not be reached or kept failing (429/5xx/transport) past the retries
    │   └── ModelTimeoutError  ... and the last attempt timed out
    └── ModelResponseError     the server answered 200 with something that is not a chat completion

Foreign errors (httpx, transformers, OS) are translated with ``raise ... from exc`` so the original stays in the
chain. No error text ever contains an API key: messages are built from the URL, the status and a body excerpt
that is scrubbed of the key.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ModelLoadError",
    "ModelRequestError",
    "ModelResponseError",
    "ModelSpecError",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "UnsupportedInputError",
]


class BackendError(Exception):
    """Base class of every error a chat-model backend raises."""


class ModelSpecError(BackendError, ValueError):
    """A model spec string could not be parsed or asks for a refused configuration."""


class ModelLoadError(BackendError):
    """Weights or a tokenizer could not be found, converted or loaded; the message names the spec."""


class UnsupportedInputError(BackendError, ValueError):
    """The messages hold content the backend cannot process (for example an image for a text-only model)."""


class _HTTPError(BackendError):
    """Shared shape of the errors that come from an OpenAI-compatible server."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class ModelRequestError(_HTTPError):
    """The server refused the request with a 4xx status (bad model name, bad auth, bad payload)."""


class ModelUnavailableError(_HTTPError):
    """The server kept failing (429, 5xx, connection errors, timeouts) after every retry."""

    def __init__(self, message: str, *, url: str, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message, url=url, status=status)
        self.attempts = attempts


class ModelTimeoutError(ModelUnavailableError):
    """The last attempt against the server timed out."""


class ModelResponseError(_HTTPError):
    """The server answered, but not with a usable chat completion (not JSON, no choices, an HTML page)."""
