from __future__ import annotations

import pytest

from agents.backends import ModelSpecError
from agents.backends.devices import Accelerators, resolve_device, resolve_dtype

CPU = Accelerators(cuda=False, cuda_bf16=False, mps=False)
GPU = Accelerators(cuda=True, cuda_bf16=True, mps=False)
OLD_GPU = Accelerators(cuda=True, cuda_bf16=False, mps=False)
MAC = Accelerators(cuda=False, cuda_bf16=False, mps=True)


@pytest.mark.parametrize(("acc", "device"), [(CPU, "cpu"), (GPU, "cuda"), (MAC, "mps")])
def test_auto_device(acc: Accelerators, device: str) -> None:
    assert resolve_device("auto", acc) == device


def test_explicit_device_must_exist() -> None:
    assert resolve_device("cpu", GPU) == "cpu"
    assert resolve_device("cuda:1", GPU) == "cuda:1"
    with pytest.raises(ModelSpecError, match="CUDA is not available"):
        resolve_device("cuda", CPU)
    with pytest.raises(ModelSpecError, match="MPS"):
        resolve_device("mps", CPU)


@pytest.mark.parametrize(
    ("device", "acc", "dtype"),
    [("cuda", GPU, "bfloat16"), ("cuda", OLD_GPU, "float32"), ("cpu", GPU, "float32"), ("mps", MAC, "float32")],
)
def test_auto_dtype(device: str, acc: Accelerators, dtype: str) -> None:
    assert resolve_dtype("auto", device, acc) == dtype


def test_fp16_refused_for_gemma_only() -> None:
    with pytest.raises(ModelSpecError, match="numerically unstable"):
        resolve_dtype("float16", "cuda", GPU, model_type="gemma3")
    assert resolve_dtype("float16", "cuda", GPU, model_type="llama") == "float16"
