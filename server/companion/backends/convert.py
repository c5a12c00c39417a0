"""GGUF → safetensors model directory, for engines that cannot read GGUF (mlx-lm, vLLM).

The conversion runs once per GGUF file and is cached in the user cache dir under a key
made of the file's name, size and mtime; a half-written directory never counts (it is
built in a temporary folder and renamed into place). Needs torch, transformers and gguf —
the `transformers` extra.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from companion.models.spec import BackendError

log = logging.getLogger(__name__)

MARKER = "companion-converted.txt"


def cache_root() -> Path:
    """Where converted models live (COMPANION_CACHE_DIR overrides the user cache dir)."""
    override = os.environ.get("COMPANION_CACHE_DIR")
    if override:
        return Path(override) / "converted"
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("companion")) / "converted"
    except ImportError:
        return Path.home() / ".cache" / "companion" / "converted"


def converted_dir(gguf: str | os.PathLike[str]) -> Path:
    """The cache folder a GGUF file converts into (it may not exist yet). Keyed on the
    file's name, size and first and last MiB, so the same file installed in two places
    converts once, and a changed file converts again."""
    path = Path(gguf)
    size = path.stat().st_size
    key = hashlib.sha256(f"{path.name}|{size}|".encode())
    with path.open("rb") as handle:
        key.update(handle.read(2**20))
        handle.seek(max(0, size - 2**20))
        key.update(handle.read(2**20))
    return cache_root() / f"{path.stem}-{key.hexdigest()[:12]}"


def is_converted(folder: Path) -> bool:
    return (folder / MARKER).is_file() and (folder / "config.json").is_file()


def ensure_safetensors(gguf: str | os.PathLike[str], dtype: str = "bfloat16") -> Path:
    """A safetensors model directory (config, weights, tokenizer) for a GGUF file,
    converting it on first use. Raises BackendError when the conversion is impossible."""
    source = Path(gguf)
    if not source.is_file():
        raise BackendError(f"cannot convert {source}: no such GGUF file")
    target = converted_dir(source)
    if is_converted(target):
        return target
    try:
        # Only ever reached from a backend's load, inside the engine host process.
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as error:
        raise BackendError(
            f"converting {source.name} for this engine needs torch, transformers and gguf "
            f"(pip install 'companion[transformers]'): {error}"
        ) from error
    log.info("converting %s to safetensors in %s (once)", source.name, target)
    folder, name = str(source.parent), source.name
    try:
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        torch_dtype = getattr(torch, dtype)
        # A GGUF-loaded model refuses save_pretrained: copy its weights into a fresh one.
        config = loaded.config
        # The weights are dequantized now: a GGUF quantization_config left in config.json
        # makes other engines (vLLM) refuse the folder.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        fresh = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
        fresh.load_state_dict(loaded.state_dict())
        fresh = fresh.to(torch_dtype)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
        try:
            fresh.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
            (staging / MARKER).write_text(f"converted from {source} ({dtype})\n")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    except BackendError:
        raise
    except Exception as error:
        raise BackendError(
            f"could not convert {source.name} to safetensors: {error.__class__.__name__}: "
            f"{error}"
        ) from error
    return target
