"""Parse the model spec strings that pick a backend.

Accepted forms (shown to the user whenever a spec is wrong)::

    embedded[?device=...&dtype=...]
    hf:<hub id or local path>[?device=cuda|cpu|mps|auto&dtype=bfloat16|float32|auto&quant=4bit|8bit]
    openai:<model>@<http(s) base url>

Parsing is pure: nothing is loaded, resolved or contacted here.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qsl

import httpx
from pydantic import BaseModel, ConfigDict

from .errors import ModelSpecError

__all__ = ["ACCEPTED_FORMS", "ModelSpec", "parse_spec"]

ACCEPTED_FORMS = (
    "accepted forms:\n"
    "  embedded[?device=cpu|cuda|mps|auto&dtype=float32|bfloat16|auto]\n"
    "  hf:<hub id or local path>[?device=cuda|cpu|mps|auto&dtype=bfloat16|float32|auto&quant=4bit|8bit]\n"
    "  openai:<model>@<http(s) base url>   e.g. openai:google/medgemma-27b-text-it@http://gpu-box:8000/v1"
)

SpecKind = Literal["embedded", "hf", "openai"]

_DEVICES = re.compile(r"\A(auto|cpu|mps|cuda(:\d+)?)\Z")
_DTYPES = {
    "auto": "auto",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}
_QUANTS = {"4bit", "8bit"}
_ALLOWED_PARAMS: dict[str, set[str]] = {"embedded": {"device", "dtype"}, "hf": {"device", "dtype", "quant"}}
# The model name may contain slashes and colons ("google/medgemma:27b"), so split on the scheme of the URL.
_OPENAI = re.compile(r"\A(?P<model>.*?)@(?P<url>https?://.*)\Z", re.DOTALL)


class ModelSpec(BaseModel):
    """A parsed spec: which backend, which model, and the local loading options."""

    model_config = ConfigDict(frozen=True)

    raw: str
    kind: SpecKind
    model: str = ""  # hub id / local path (hf), model name (openai), "" (embedded: resolved at load)
    base_url: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    quant: str | None = None

    def __str__(self) -> str:
        return self.raw


def _fail(spec: str, problem: str) -> ModelSpecError:
    return ModelSpecError(f"invalid model spec {spec!r}: {problem}\n{ACCEPTED_FORMS}")


def _is_gemma_name(name: str) -> bool:
    return "gemma" in name.lower()


def _parse_options(spec: str, kind: str, query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    if not query:
        return options
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise _fail(spec, f"cannot read options {query!r} (expected key=value&key=value)") from exc
    for key, value in pairs:
        if key not in _ALLOWED_PARAMS[kind]:
            allowed = ", ".join(sorted(_ALLOWED_PARAMS[kind]))
            raise _fail(spec, f"unknown option {key!r} for {kind} (allowed: {allowed})")
        if key in options:
            raise _fail(spec, f"option {key!r} given twice")
        options[key] = value.strip().lower()
    return options


def _local_spec(spec: str, kind: SpecKind, model: str, query: str) -> ModelSpec:
    options = _parse_options(spec, kind, query)
    device = options.get("device", "auto")
    if not _DEVICES.match(device):
        raise _fail(spec, f"device {device!r} is not one of auto, cpu, mps, cuda, cuda:N")
    dtype_in = options.get("dtype", "auto")
    if dtype_in not in _DTYPES:
        raise _fail(spec, f"dtype {dtype_in!r} is not one of bfloat16, float32, auto")
    dtype = _DTYPES[dtype_in]
    if dtype == "float16" and (kind == "embedded" or _is_gemma_name(model)):
        # Gemma 3 overflows in fp16 (Google's model card); refusing here beats garbage text later.
        raise _fail(spec, "float16 is refused for Gemma-family models (numerically unstable); use bfloat16")
    quant = options.get("quant")
    if quant is not None and quant not in _QUANTS:
        raise _fail(spec, f"quant {quant!r} is not one of 4bit, 8bit")
    if quant is not None and device in {"cpu", "mps"}:
        raise _fail(spec, f"quant={quant} needs a CUDA GPU (bitsandbytes), not device={device}")
    return ModelSpec(raw=spec, kind=kind, model=model, device=device, dtype=dtype, quant=quant)


def parse_spec(spec: str) -> ModelSpec:
    """Parse a model spec string; raise `ModelSpecError` saying what is wrong and listing the accepted forms."""
    if not isinstance(spec, str) or not spec.strip():
        raise _fail(str(spec), "empty spec")
    spec = spec.strip()
    if spec == "embedded" or spec.startswith("embedded?"):
        _, _, query = spec.partition("?")
        return _local_spec(spec, "embedded", "", query)
    if spec.startswith("embedded:"):
        raise _fail(spec, "embedded takes no model name (it is always the packaged SmolLM2-135M-Instruct)")

    head, sep, rest = spec.partition(":")

    if head == "hf" and sep:
        # The query starts at the last "?" so a local path may not contain one; hub ids never do.
        model, _, query = rest.rpartition("?") if "?" in rest else (rest, "", "")
        model = model.strip()
        if not model:
            raise _fail(spec, "missing hub id or local path after 'hf:'")
        return _local_spec(spec, "hf", model, query)

    if head == "openai" and sep:
        match = _OPENAI.match(rest)
        if match is None:
            raise _fail(spec, "expected openai:<model>@<http(s)://host[:port]/path>")
        model, url = match.group("model").strip(), match.group("url").strip().rstrip("/")
        if not model:
            raise _fail(spec, "missing model name before '@'")
        try:
            host = httpx.URL(url).host
        except httpx.InvalidURL as exc:
            raise _fail(spec, f"base url {url!r} is not a valid URL") from exc
        if not host:
            raise _fail(spec, f"base url {url!r} has no host")
        return ModelSpec(raw=spec, kind="openai", model=model, base_url=url, device="remote", dtype="remote")

    if head in {"hf", "openai"}:
        raise _fail(spec, f"'{head}' needs a ':' followed by a model")
    raise _fail(spec, f"unknown backend {head!r}")
