"""Choose the device and dtype a local model runs with.

Rules: cuda if available, else mps, else cpu; bfloat16 on cuda when the GPU supports it, float32 elsewhere;
float16 never for Gemma (Gemma 3 overflows in fp16, per Google's model card). The choice is a pure function of
what the machine offers so it can be tested without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ModelSpecError

__all__ = ["Accelerators", "detect_accelerators", "resolve_device", "resolve_dtype"]


@dataclass(frozen=True)
class Accelerators:
    """What the current process can run on."""

    cuda: bool
    cuda_bf16: bool
    mps: bool


def detect_accelerators() -> Accelerators:
    """Ask torch which accelerators exist (imports torch, so call it only when a model is about to load)."""
    import torch

    cuda = torch.cuda.is_available()
    return Accelerators(
        cuda=cuda,
        cuda_bf16=bool(cuda and torch.cuda.is_bf16_supported()),
        mps=bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    )


def resolve_device(requested: str, acc: Accelerators) -> str:
    """Turn ``auto`` into a concrete device; refuse a device this machine does not have."""
    if requested == "auto":
        return "cuda" if acc.cuda else "mps" if acc.mps else "cpu"
    if requested.startswith("cuda") and not acc.cuda:
        raise ModelSpecError(f"device {requested!r} was asked for but CUDA is not available on this machine")
    if requested == "mps" and not acc.mps:
        raise ModelSpecError("device 'mps' was asked for but MPS is not available on this machine")
    return requested


def resolve_dtype(requested: str, device: str, acc: Accelerators, *, model_type: str = "") -> str:
    """Turn ``auto`` into a dtype name for ``device``; refuse float16 for Gemma-family models."""
    if requested == "float16" and model_type.lower().startswith("gemma"):
        raise ModelSpecError(
            f"float16 is refused for {model_type!r} models: Gemma 3 is numerically unstable in fp16; "
            "use dtype=bfloat16 (GPU) or float32 (CPU)"
        )
    if requested != "auto":
        return requested
    if device.startswith("cuda") and acc.cuda_bf16:
        return "bfloat16"
    # CPU kernels for bf16 are slow or missing on many CPUs, and older GPUs lack bf16: float32 is the safe choice.
    return "float32"
