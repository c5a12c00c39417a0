"""Backend names → classes, the automatic choice, and the load ladder.

The ladder (ARCHITECTURE.md): configured model → embedded default → templates. Each step
down is recorded with its reason; the server logs it once and `companion/status` shows it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from companion.backends.base import Backend, BackendError, ModelSpec, NoModel
from companion.backends.faulty import FaultyBackend, configured_fault
from companion.config import Settings
from companion.models import catalog, resolve, tiers
from companion.models.hardware import Hardware, probe

log = logging.getLogger(__name__)


def _llamacpp() -> Backend:
    from companion.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend()


def _transformers() -> Backend:
    from companion.backends.transformers import TransformersBackend

    return TransformersBackend()


def _mlx() -> Backend:
    from companion.backends.mlx import MlxBackend

    return MlxBackend()


def _vllm() -> Backend:
    from companion.backends.vllm import VllmBackend

    return VllmBackend()


FACTORIES: dict[str, Callable[[], Backend]] = {
    "llamacpp": _llamacpp,
    "transformers": _transformers,
    "mlx": _mlx,
    "vllm": _vllm,
}

# Modules whose import tells whether a backend can run here (checked without importing).
_REQUIRES: dict[str, tuple[str, ...]] = {
    "llamacpp": ("llama_cpp",),
    "transformers": ("torch", "transformers", "gguf"),
    "mlx": ("mlx", "mlx_lm"),
    "vllm": ("vllm",),
    "openai": (),
    "templates": (),
}

BACKEND_NAMES = tuple(_REQUIRES)

# Engines whose Capabilities.safe_mode is True (known here without importing them; a unit
# test checks the two agree): a crash at load is retried in safe mode only for these.
SAFE_MODE_ENGINES = frozenset({"llamacpp"})

# The weights format each local engine loads from the catalog (tiers.choose `fmt`).
_FORMATS = {"llamacpp": "gguf", "mlx": "mlx"}


def weights_format(backend: str) -> str:
    """The catalog download format `backend` loads ("gguf", "mlx" or "hf")."""
    return _FORMATS.get(backend, "hf")


def _availability(name: str) -> tuple[bool, str]:
    return availability(name)


def availability(name: str) -> tuple[bool, str]:
    """Whether backend `name` can run here and, if not, why (cheap: no heavy imports)."""
    import importlib.util

    if name not in _REQUIRES:
        return False, f"backend {name!r} is not part of this build"
    missing = [module for module in _REQUIRES[name] if importlib.util.find_spec(module) is None]
    if missing:
        return False, f"missing Python package(s): {', '.join(missing)}"
    return True, "installed"


# vLLM is worth its start-up time on a CUDA GPU with at least this much free memory.
VLLM_MIN_FREE_GPU_MB = 4096


def automatic_backend(
    hw: Hardware | None = None, exclude: frozenset[str] = frozenset()
) -> tuple[str, str]:
    """The best engine this machine can run, and the reason for the choice: MLX on Apple
    Silicon, vLLM on a CUDA GPU with enough free memory, llama.cpp elsewhere
    (transformers when llama.cpp is missing), templates when nothing is installed.
    `exclude`: engines that crashed repeatedly this session."""
    hw = hw or probe()
    passed: list[str] = [f"{name} skipped (it crashed repeatedly)" for name in sorted(exclude)]

    def availability(name: str) -> tuple[bool, str]:
        return (False, "crashed") if name in exclude else _availability(name)

    if hw.apple_silicon:
        ok, why = availability("mlx")
        if ok:
            return "mlx", "auto: Apple Silicon, mlx-lm installed"
        passed.append(f"mlx skipped ({why})")
    if hw.cuda:
        free = hw.gpu_free_mb or 0
        ok, why = availability("vllm")
        if ok and free >= VLLM_MIN_FREE_GPU_MB:
            return "vllm", f"auto: CUDA GPU {hw.gpu_name} with {free} MB free, vLLM installed"
        passed.append(f"vllm skipped ({why})" if not ok else
                      f"vllm skipped (GPU has {free} MB free, needs {VLLM_MIN_FREE_GPU_MB})")
    where = "Apple Silicon" if hw.apple_silicon else ("this GPU machine" if hw.cuda else "CPU")
    for name in ("llamacpp", "transformers"):
        ok, why = availability(name)
        if ok:
            then = "; ".join([*passed, f"{name} for {where}"])
            return name, f"auto: {then}"
        if name not in exclude:
            passed.append(f"{name} skipped ({why})")
    return "templates", ("auto: no inference engine installed "
                         f"({'; '.join(passed)}); pip install 'companion[llamacpp]'")


def estimated_footprint_mb(spec: ModelSpec) -> float:
    """For models outside the catalog: weights on disk plus KV cache and runtime overhead
    (a deliberate overestimate)."""
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


def _spec_for_choice(choice: tiers.Choice, settings: Settings) -> ModelSpec:
    """The local weights of a catalog choice (the embedded file, or the HF cache)."""
    assert choice.model is not None
    context = min(settings.context_tokens, choice.context_tokens)
    model = choice.model
    if model.embedded:
        return resolve.resolve("", context, settings.threads)
    source = choice.source or ""
    if source.endswith(".gguf"):
        repo, filename = catalog.split_gguf_source(source)
        found = resolve.find_in_hf_cache(repo, filename)
    else:
        found = resolve.find_in_hf_cache(source)
    if found is None:
        raise BackendError(
            f"{model.id} ({choice.quantization}) is not downloaded: "
            f"companion models pull {model.id}"
        )
    return ModelSpec(
        name=model.id, path=str(found), family=model.family, fim=model.fim,
        instruct=model.instruct, context_tokens=context, threads=settings.threads,
    )


def _candidates(
    settings: Settings, hw: Hardware, backend_name: str, step: Callable[[str], None]
) -> Iterator[ModelSpec]:
    """Models to try, best first: a configured path or hub id outside the catalog, then
    the catalog ladder for this machine's tier (configured → smaller → embedded)."""
    requested = settings.model.strip()
    budget = settings.memory_budget_mb
    if requested and requested.lower() != "auto" and catalog.get(requested) is None:
        try:
            spec = resolve.resolve(requested, settings.context_tokens, settings.threads)
        except BackendError as error:
            step(str(error))
        else:
            need, free = estimated_footprint_mb(spec), tiers.usable_memory_mb(hw, budget)
            if need > free:
                where = "within memoryBudgetMB" if 0 < budget < hw.available_ram_mb else "free"
                step(f"{spec.name} needs ~{need:.0f} MB, only {free} MB {where}")
            else:
                yield spec
        requested = ""  # the ladder goes on from the embedded default
    fmt = weights_format(backend_name)
    choice = tiers.choose(requested, hw, budget, fmt)
    for line in choice.steps:
        step(line)
    if choice.model is None:
        step(choice.reason)
        return
    try:
        yield _spec_for_choice(choice, settings)
    except BackendError as error:
        step(str(error))
    if not choice.model.embedded:
        embedded = catalog.get(catalog.EMBEDDED_ID)
        if embedded is not None and tiers.fits(embedded, "q4", hw, budget):
            yield resolve.resolve("", min(settings.context_tokens, choice.context_tokens),
                                  settings.threads)


# Loads `spec` with engine `name` and returns the backend serving it; `step` records a
# step down the ladder. The language server passes one that loads in the engine host.
Loader = Callable[[str, ModelSpec, Callable[[str], None]], Backend]


def load_in_process(name: str, spec: ModelSpec, step: Callable[[str], None]) -> Backend:
    """The engine in this process (benchmarks' engine floor; the host itself)."""
    backend = FACTORIES[name]()
    fault = configured_fault()
    if fault is not None:  # the fault-injection tests, never set otherwise
        backend = FaultyBackend(backend, *fault)
    backend.load(spec)
    return backend


def load_with_fallback(
    settings: Settings,
    on_step: Callable[[str], Any] | None = None,
    hw: Hardware | None = None,
    loader: Loader = load_in_process,
    exclude: frozenset[str] = frozenset(),
) -> LoadResult:
    """Load the configured backend and model, stepping down the ladder on any failure:
    the configured model, smaller ones, the embedded model; then the next engine this
    machine has (an engine that failed to load every model, or crashed repeatedly, is
    passed over), then templates."""
    steps: list[str] = []

    def step(message: str) -> None:
        steps.append(message)
        log.warning("fallback: %s", message)
        if on_step:
            on_step(message)

    name, reason = settings.backend, f"configured: backend={settings.backend}"
    if name == "openai":
        remote = _load_remote(settings, step)
        if remote is not None:
            return remote
        name = "auto"
    hardware_now = hw or probe()
    if name in exclude:
        step(f"backend {name} crashed repeatedly this session: choosing another")
        name, reason = automatic_backend(hardware_now, exclude)
    elif name == "auto":
        name, reason = automatic_backend(hardware_now, exclude)
    elif name not in _REQUIRES:
        step(f"backend {name!r} is not available in this build")
        name, reason = automatic_backend(hardware_now, exclude)
    else:
        ok, why = availability(name)
        if not ok:
            step(f"backend {name} unavailable: {why}")
            name, reason = automatic_backend(hardware_now, exclude)
    if name == "templates":
        return LoadResult(NoModel(), None, reason, steps)
    tried = set(exclude)
    while name != "templates":
        tried.add(name)
        for spec in _candidates(settings, hardware_now, name, step):
            engine = name
            if engine == "llamacpp" and not spec.path.endswith(".gguf"):
                if not availability("transformers")[0]:
                    step(f"{spec.name} is not a GGUF file and transformers is not installed")
                    continue
                engine = "transformers"
            try:
                backend = loader(engine, spec, step)
            except (BackendError, MemoryError, OSError, RuntimeError, ValueError) as error:
                step(f"{engine} could not load {spec.name}: {error}")
                continue
            return LoadResult(backend, spec,
                              f"{reason}; {spec.name} on {hardware_now.summary()}", steps)
        following, why = automatic_backend(hardware_now, frozenset(tried))
        if following != "templates":
            step(f"no model loaded with {name}: trying {following}")
            name, reason = following, why
        else:
            break
    step("no model could be loaded: serving templates")
    return LoadResult(NoModel(), None, "fallback: templates", steps)


def _load_remote(settings: Settings, step: Callable[[str], None]) -> LoadResult | None:
    """The OpenAI-compatible server in `endpoint`, or None (with the reason as a step) so
    that the local ladder takes over."""
    from companion.backends.openai import OpenAIBackend

    if not settings.endpoint:
        step("backend openai needs companion.endpoint (e.g. http://127.0.0.1:8000/v1)")
        return None
    family, fim = resolve.guess_family(settings.model)
    spec = ModelSpec(
        name=settings.model.strip(), path=settings.endpoint, family=family, fim=fim,
        instruct="instruct" in settings.model.lower(), context_tokens=settings.context_tokens,
    )
    try:
        backend = OpenAIBackend(settings.endpoint, settings.api_key_env)
        backend.load(spec)
    except (BackendError, OSError, ValueError) as error:
        step(f"openai endpoint unusable: {error}")
        return None
    info = backend.info()  # the model the server actually serves (asked when unset)
    family, fim = resolve.guess_family(info.model)
    served = dataclasses.replace(spec, name=info.model, family=family, fim=fim,
                                 instruct="instruct" in info.model.lower())
    return LoadResult(backend, served, f"configured: backend=openai at {info.device}", [])
