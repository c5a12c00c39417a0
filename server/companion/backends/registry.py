"""Backend names → classes, the automatic choice, and the load ladder.

The ladder (ARCHITECTURE.md): configured model → embedded default → templates. Each step
down is recorded with its reason; the server logs it once and `companion/status` shows it.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from companion.backends.base import Backend, BackendError, ModelSpec
from companion.backends.templates import TemplatesBackend
from companion.config import Settings
from companion.models import resolve

log = logging.getLogger(__name__)


def _llamacpp() -> Backend:
    from companion.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend()


def _transformers() -> Backend:
    from companion.backends.transformers import TransformersBackend

    return TransformersBackend()


FACTORIES: dict[str, Callable[[], Backend]] = {
    "llamacpp": _llamacpp,
    "transformers": _transformers,
    "templates": TemplatesBackend,
}

# Modules whose import tells whether a backend can run here (checked without importing).
_REQUIRES: dict[str, tuple[str, ...]] = {
    "llamacpp": ("llama_cpp",),
    "transformers": ("torch", "transformers", "gguf"),
    "templates": (),
}


def availability(name: str) -> tuple[bool, str]:
    """Whether backend `name` can run here and, if not, why (cheap: no heavy imports)."""
    import importlib.util

    if name not in FACTORIES:
        return False, f"backend {name!r} is not part of this build"
    missing = [module for module in _REQUIRES[name] if importlib.util.find_spec(module) is None]
    if missing:
        return False, f"missing Python package(s): {', '.join(missing)}"
    return True, "installed"


def automatic_backend() -> tuple[str, str]:
    """The best engine this machine can run, and the reason for the choice."""
    apple = platform.system() == "Darwin" and platform.machine() == "arm64"
    order = ["llamacpp", "transformers"]
    for name in order:
        ok, _ = availability(name)
        if ok:
            where = "Apple Silicon" if apple else "CPU"
            return name, f"auto: {name} is the fastest engine installed for {where}"
    return "templates", "auto: no inference engine installed (pip install 'companion[llamacpp]')"


def estimated_footprint_mb(spec: ModelSpec) -> float:
    """Weights on disk plus KV cache and runtime overhead (a deliberate overestimate)."""
    size = 0
    if os.path.isfile(spec.path):
        size = os.path.getsize(spec.path)
    elif os.path.isdir(spec.path):
        size = sum(
            entry.stat().st_size
            for entry in os.scandir(spec.path)
            if entry.is_file() and entry.name.endswith((".safetensors", ".bin", ".gguf"))
        )
    return size / 2**20 * 1.2 + 64 + spec.context_tokens * 0.05


def free_memory_mb() -> float:
    import psutil

    return float(psutil.virtual_memory().available) / 2**20


@dataclass
class LoadResult:
    """What the ladder ended on, and every step it took to get there."""

    backend: Backend
    spec: ModelSpec | None
    reason: str
    steps: list[str] = field(default_factory=list)

    @property
    def degraded(self) -> bool:
        return bool(self.steps)


def _try_load(backend_name: str, spec: ModelSpec, budget_mb: int) -> Backend:
    need = estimated_footprint_mb(spec)
    free = free_memory_mb()
    if budget_mb and need > budget_mb:
        raise BackendError(
            f"{spec.name} needs ~{need:.0f} MB, over memoryBudgetMB={budget_mb}"
        )
    if need > free:
        raise BackendError(f"{spec.name} needs ~{need:.0f} MB, only {free:.0f} MB free")
    backend = FACTORIES[backend_name]()
    backend.load(spec)
    return backend


def load_with_fallback(
    settings: Settings, on_step: Callable[[str], Any] | None = None
) -> LoadResult:
    """Load the configured backend and model, stepping down the ladder on any failure."""
    steps: list[str] = []

    def step(message: str) -> None:
        steps.append(message)
        log.warning("fallback: %s", message)
        if on_step:
            on_step(message)

    name, reason = settings.backend, f"configured: backend={settings.backend}"
    if name == "auto":
        name, reason = automatic_backend()
    elif name not in FACTORIES:
        step(f"backend {name!r} is not available in this build")
        name, reason = automatic_backend()
    else:
        ok, why = availability(name)
        if not ok:
            step(f"backend {name} unavailable: {why}")
            name, reason = automatic_backend()
    if name == "templates":
        return LoadResult(TemplatesBackend(), None, reason, steps)

    candidates: list[str] = [settings.model]
    if settings.model.strip() not in ("", resolve.EMBEDDED_NAME):
        candidates.append("")  # the embedded default is the next rung
    for model_name in candidates:
        try:
            spec = resolve.resolve(model_name, settings.context_tokens, settings.threads)
        except BackendError as error:
            step(str(error))
            continue
        if name == "llamacpp" and not spec.path.endswith(".gguf"):
            fallback = "transformers" if availability("transformers")[0] else None
            if fallback is None:
                step(f"{spec.name} is not a GGUF file and transformers is not installed")
                continue
            name, reason = fallback, f"{spec.name} is not GGUF: using transformers"
        try:
            backend = _try_load(name, spec, settings.memory_budget_mb)
        except BackendError as error:
            step(f"{name} could not load {spec.name}: {error}")
            continue
        except (MemoryError, OSError, RuntimeError, ValueError) as error:
            step(f"{name} failed loading {spec.name}: {error.__class__.__name__}: {error}")
            continue
        if model_name != settings.model:
            reason = f"{reason}; fell back to the embedded model"
        return LoadResult(backend, spec, reason, steps)
    step("no model could be loaded: serving templates")
    return LoadResult(TemplatesBackend(), None, "fallback: templates", steps)
