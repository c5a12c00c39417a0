"""What this machine taught us about an engine build: "needs safe mode", and why.

A host that dies at load or in its self-test on an illegal instruction is retried in the
engine's safe configuration; when that works, the verdict is kept per machine (CPU model
and feature flags) and per engine build (package version and native library), so later
starts go straight to safe mode instead of crashing first. Read without importing any
model library (the language server calls this).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
from pathlib import Path

log = logging.getLogger(__name__)

_DISTRIBUTIONS = {"llamacpp": ("llama_cpp", "llama-cpp-python"), "mlx": ("mlx", "mlx"),
                  "transformers": ("torch", "torch"), "vllm": ("vllm", "vllm")}


def verdicts_path() -> Path:
    override = os.environ.get("COMPANION_CACHE_DIR")
    if override:
        return Path(override) / "engine-verdicts.json"
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("companion")) / "engine-verdicts.json"
    except ImportError:
        return Path.home() / ".cache" / "companion" / "engine-verdicts.json"


def machine_key() -> str:
    """The CPU as an engine sees it: architecture, model name and feature flags."""
    parts = [platform.system(), platform.machine()]
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(("model name", "flags", "Features")):
                parts.append(line.split(":", 1)[1].strip())
                if line.startswith(("flags", "Features")):
                    break
    except OSError:
        parts.append(platform.processor())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def engine_build(backend: str) -> str:
    """The installed engine: distribution version plus its largest native library's size
    and modification time (a rebuild with other flags changes it)."""
    module, distribution = _DISTRIBUTIONS.get(backend, (backend, backend))
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    spec = importlib.util.find_spec(module)
    native = ""
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations)))
        # The package folder and its lib/ only: a walk of torch's tree would cost a second.
        libraries = [path for pattern in ("*.so*", "*.dylib", "*.dll", "*.pyd")
                     for where in (folder, folder / "lib") for path in where.glob(pattern)]
        if libraries:
            biggest = max(libraries, key=lambda path: path.stat().st_size)
            stat = biggest.stat()
            native = f"{biggest.name}:{stat.st_size}:{int(stat.st_mtime)}"
    return f"{backend}-{version}-{native}"


def _key(backend: str) -> str:
    return f"{machine_key()}|{engine_build(backend)}"


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def needs_safe_mode(backend: str) -> str | None:
    """Why this engine build needs safe mode on this machine, or None."""
    entry = _read(verdicts_path()).get(_key(backend))
    return entry.get("reason", "crashed before") if isinstance(entry, dict) else None


def remember_safe_mode(backend: str, reason: str) -> None:
    path = verdicts_path()
    data = _read(path)
    data[_key(backend)] = {"safe": "true", "reason": reason}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        temporary.replace(path)
    except OSError as error:  # the next start retries the crash; nothing worse
        log.warning("could not remember the safe-mode verdict in %s: %s", path, error)
