"""vLLM in process (`LLMEngine`), with automatic prefix caching: a keystroke reuses the KV
blocks of the prompt it shares with the previous one.

The engine runs in child processes (vLLM's EngineCore and its worker); this thread adds
requests, waits for the engine's output queue with the cancel flag in view, and aborts the
request in the engine when the flag is set, the deadline passes or the consumer stops
reading. What the engine may use comes from the hardware tier (`engine_settings`, pure).

Process hygiene, because fd 1 carries the LSP protocol: vLLM logs to stdout by default,
so VLLM_LOGGING_STREAM is pointed at stderr before vLLM is first imported; the children
are spawned (not forked from a threaded server) and inherit fd 1, which `companion serve`
has already pointed at stderr. vLLM's children outlive a server that dies without
unloading (killed by the editor, or stdin closed: `serve` then leaves with os._exit), so a
small reaper process ends them when that happens. The engine never touches the network:
models load from local directories only, with HF_HUB_OFFLINE=1 and usage statistics off.
vLLM is imported lazily, so this module imports without it.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import json
import logging
import math
import os
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.backends.base import (
    BackendError,
    BackendInfo,
    Capabilities,
    Chunk,
    GenerationRequest,
    ModelSpec,
    stop_reason,
)
from companion.models import tiers
from companion.models.hardware import Hardware

log = logging.getLogger(__name__)

_MB = 2**20
# Memory the engine needs besides weights and KV cache (measured with SmolLM2-135M on a
# CPU: torch and vLLM take ~0.8 GiB of the worker; a GPU adds the CUDA context,
# activations, the sampler and CUDA graphs).
RUNTIME_MB_CPU = 1024
RUNTIME_MB_GPU = 2560
KV_CONTEXTS = 4  # whole contexts of KV cache: the recent prompts prefix caching can reuse
MIN_KV_MB = 256
MAX_UTILIZATION = 0.95
# Prefill is chunked this finely so that an abort lands within one chunk (~1 s on a CPU);
# on a GPU the chunk also bounds the activation memory the runtime share must hold.
CPU_BATCHED_TOKENS = 512
GPU_BATCHED_TOKENS = 2048
MAX_NUM_SEQS = 4  # one generation at a time, plus aborted ones draining
WAIT_SLICE_S = 0.05  # a wait for engine output looks at the cancel flag this often
FINISH_REASONS = {"stop": "stop", "length": "length", "abort": "cancelled"}
# Set before vLLM is imported (its logging config is read at import) and inherited by its
# child processes.
ENVIRONMENT = {
    "VLLM_LOGGING_STREAM": "ext://sys.stderr",  # stdout is the LSP protocol
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
DEFAULT_ENVIRONMENT = {
    "VLLM_LOGGING_LEVEL": "WARNING",  # its INFO lines would bury Companion's own log
    # fork() from a server with threads running can deadlock the child; spawn is safe
    # because `python -m companion` and the `companion` script guard their entry point.
    "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
}


@dataclass(frozen=True)
class ModelShape:
    """What sizing the engine needs to know about a checkpoint (from its config.json)."""

    weights_mb: float
    kv_bytes_per_token: int  # 16-bit K and V over all layers
    max_positions: int
    quantization: str | None = None  # a pre-quantized checkpoint's method (awq, gptq …)


@dataclass(frozen=True)
class MemoryPool:
    """The memory vLLM's `gpu_memory_utilization` is a share of: the GPU's, or on a CPU the
    RAM of the worker's NUMA node."""

    total_mb: int
    free_mb: int


@dataclass(frozen=True)
class EngineSettings:
    """Engine arguments for one model on one machine."""

    dtype: str
    quantization: str | None  # vLLM's `quantization` argument
    weights: str  # what the weights are held in, for the log and status
    max_model_len: int
    gpu_memory_utilization: float
    memory_mb: int  # what the engine may take: weights, runtime and KV cache
    tier: str
    enforce_eager: bool
    max_num_batched_tokens: int
    notes: tuple[str, ...] = ()


def memory_pool(hw: Hardware) -> MemoryPool:
    """The pool for `hw` as the probe sees it (GPU memory, else all RAM)."""
    if hw.cuda and hw.gpu_total_mb is not None:
        return MemoryPool(hw.gpu_total_mb, hw.gpu_free_mb or 0)
    return MemoryPool(hw.total_ram_mb, hw.available_ram_mb)


def engine_settings(
    hw: Hardware,
    context_tokens: int,
    shape: ModelShape,
    pool: MemoryPool | None = None,
    ampere: bool = False,
    budget_mb: int = 0,
) -> EngineSettings:
    """The seed tier as vLLM arguments. Memory ≥ 32 GB: 16-bit weights, 8k context;
    ≥ 16 GB: 4-bit, 4k; below: 4-bit, 2k (the memory is free GPU memory with CUDA,
    available RAM otherwise). The context never exceeds `context_tokens` (the ModelSpec)
    nor the model's positions. vLLM quantizes an unquantized checkpoint on load only to 8
    bits (fp8, on a GPU of compute capability ≥ 8.0: `ampere`, which also has bf16), so
    "4-bit" means fp8 there, and 16-bit on a CPU; a pre-quantized checkpoint keeps its own
    method.
    `gpu_memory_utilization` is sized to weights, runtime and KV_CONTEXTS contexts of KV
    cache — not vLLM's default 0.92, which on a CPU is a share of all RAM and refuses to
    start on a busy machine. Raises BackendError when that does not fit in what is free.
    """
    tier = tiers.tier_for(hw, budget_mb)
    pool = pool or memory_pool(hw)
    gpu = hw.cuda
    notes: list[str] = []
    max_model_len = max(1, min(context_tokens, tier.context_tokens, shape.max_positions))
    weights_mb = shape.weights_mb
    quantization: str | None = None
    dtype = "bfloat16" if gpu and ampere else "auto"  # older GPUs: vLLM picks float16
    if shape.quantization:
        weights, dtype = f"{shape.quantization} checkpoint", "auto"
    elif tier.quantization == "bf16":
        weights = "bf16" if dtype == "bfloat16" or not gpu else "16-bit"
    elif gpu and ampere:
        quantization, weights = "fp8", "fp8 (quantized on load)"
        weights_mb = shape.weights_mb / 2
        notes.append("4-bit tier: vLLM quantizes unquantized weights on load to fp8 at best")
    else:
        weights, dtype = "16-bit", "auto"
        where = "on a CPU" if not gpu else "on this GPU (no fp8 before compute capability 8.0)"
        notes.append(f"4-bit tier, 16-bit weights: vLLM cannot quantize on load {where}")
    kv_mb = max(MIN_KV_MB, KV_CONTEXTS * max_model_len * shape.kv_bytes_per_token / _MB)
    need_mb = math.ceil((RUNTIME_MB_GPU if gpu else RUNTIME_MB_CPU) + weights_mb * 1.1 + kv_mb)
    device = "GPU" if gpu else "RAM"
    free_mb = min(pool.free_mb, budget_mb) if budget_mb > 0 else pool.free_mb
    if pool.total_mb <= 0 or need_mb > free_mb:
        raise BackendError(
            f"vLLM needs ~{need_mb} MB of {device} for this model at {max_model_len} tokens "
            f"of context, only {free_mb} MB free: lower companion.contextTokens, pick a "
            f"smaller model, or close what uses the {device}"
        )
    utilization = min(MAX_UTILIZATION, math.ceil(need_mb / pool.total_mb * 100) / 100)
    return EngineSettings(
        dtype=dtype,
        quantization=quantization,
        weights=weights,
        max_model_len=max_model_len,
        gpu_memory_utilization=utilization,
        memory_mb=need_mb,
        tier=tier.name,
        # CPU: torch.compile costs ~110 s of start-up for no faster decoding (measured);
        # GPU: CUDA graphs make small-batch decoding several times faster.
        enforce_eager=not gpu,
        max_num_batched_tokens=GPU_BATCHED_TOKENS if gpu else CPU_BATCHED_TOKENS,
        notes=tuple(notes),
    )


def read_shape(folder: Path) -> ModelShape:
    """A checkpoint's size, KV bytes per token and positions, from its directory."""
    try:
        config: dict[str, Any] = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as error:
        raise BackendError(f"{folder} is not a model directory (config.json: {error})") from error
    text: dict[str, Any] = config.get("text_config") or config
    heads = int(text.get("num_attention_heads") or 1)
    kv_heads = int(text.get("num_key_value_heads") or heads)
    head_dim = int(text.get("head_dim") or int(text.get("hidden_size") or 0) // heads)
    layers = int(text.get("num_hidden_layers") or 0)
    weights = sum(
        entry.stat().st_size
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith((".safetensors", ".bin", ".pt"))
    )
    method = (config.get("quantization_config") or {}).get("quant_method")
    return ModelShape(
        weights_mb=weights / _MB,
        kv_bytes_per_token=2 * layers * kv_heads * head_dim * 2,
        max_positions=int(text.get("max_position_embeddings") or 1 << 20),
        quantization=None if method in (None, "gguf") else str(method),
    )


def model_directory(spec: ModelSpec) -> Path:
    """A local safetensors directory for `spec`: an embedded/local GGUF is converted once
    (cached), a hub id must already be in the Hugging Face cache."""
    if spec.path.endswith(".gguf"):
        from companion.models.convert import ensure_safetensors

        return ensure_safetensors(spec.path)
    path = Path(os.path.expanduser(spec.path))
    if path.is_dir():
        return path
    from companion.models.resolve import find_in_hf_cache

    cached = find_in_hf_cache(spec.path) if "/" in spec.path and not path.exists() else None
    if cached is None:
        raise BackendError(
            f"vLLM needs a model directory or a downloaded hub id, got {spec.path}: "
            f"companion models pull {spec.name} --format hf"
        )
    return cached


def prepare_environment() -> None:
    """Environment for vLLM and its children (before vLLM is imported)."""
    os.environ.update(ENVIRONMENT)
    for key, value in DEFAULT_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


class VllmBackend:
    """vLLM's engine, one model, one generation at a time (on GPU or CPU)."""

    name = "vllm"
    capabilities = Capabilities()

    def __init__(self) -> None:
        self._engine: Any = None
        self._spec: ModelSpec | None = None
        self._settings: EngineSettings | None = None
        self._device = "cpu"
        self._ids = itertools.count(1)
        self._reaper: Reaper | None = None


    def load(self, model: ModelSpec) -> None:
        self.unload()  # one engine per backend: never two sets of vLLM processes
        prepare_environment()
        try:
            from vllm import EngineArgs, LLMEngine
            from vllm.platforms import current_platform
        except ImportError as error:
            raise BackendError(
                f"vLLM is not installed here ({error}): pip install 'companion[vllm]'"
            ) from error
        folder = model_directory(model)
        shape = read_shape(folder)
        hw, pool, ampere = self._machine(current_platform)
        settings = engine_settings(hw, model.context_tokens, shape, pool, ampere)
        overrides: dict[str, Any] = {}
        if shape.quantization is None and _has_gguf_quantization(folder):
            # A GGUF conversion keeps its "gguf" quantization_config, which vLLM rejects.
            overrides["quantization_config"] = None
        args = EngineArgs(
            model=str(folder),
            tokenizer=str(folder),
            dtype=settings.dtype,
            quantization=settings.quantization,
            max_model_len=settings.max_model_len,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            enable_prefix_caching=True,
            enforce_eager=settings.enforce_eager,
            max_num_seqs=MAX_NUM_SEQS,
            max_num_batched_tokens=settings.max_num_batched_tokens,
            disable_log_stats=True,
            hf_overrides=overrides,
            seed=0,
        )
        log.info(
            "vLLM: %s on %s, %s weights, %d-token context, gpu_memory_utilization=%.2f "
            "(~%d MB; tier %s)%s", model.name, self._device, settings.weights,
            settings.max_model_len, settings.gpu_memory_utilization, settings.memory_mb,
            settings.tier, "".join(f"; {note}" for note in settings.notes),
        )
        before = set(descendants())
        try:
            engine = LLMEngine.from_engine_args(args)
        except Exception as error:
            raise BackendError(_start_failure(model, error)) from error
        self._engine, self._spec, self._settings = engine, model, settings
        started = {pid: created for pid, created in descendants().items() if pid not in before}
        self._reaper = Reaper.start(started)

    def _machine(self, platform: Any) -> tuple[Hardware, MemoryPool, bool]:
        """This machine as vLLM will use it: a CPU build of vLLM ignores any GPU."""
        from companion.models.hardware import probe

        hw = probe()
        if hw.cuda and platform.is_cuda_alike():
            capability = platform.get_device_capability()  # NVML: no CUDA context here
            ampere = bool(platform.is_cuda() and capability is not None and capability.major >= 8)
            self._device = f"cuda:0 {hw.gpu_name or platform.get_device_name()}"
            return hw, memory_pool(hw), ampere
        hw = dataclasses.replace(hw, cuda=False)
        self._device = "cpu"
        return hw, _cpu_pool(hw), False

    def unload(self) -> None:
        engine, self._engine = self._engine, None
        reaper, self._reaper = self._reaper, None
        self._spec = self._settings = None
        if engine is None:
            return
        try:
            engine.engine_core.shutdown()
        except Exception as error:  # the children may be gone, or stuck: reap them
            log.warning("vLLM shutdown: %s", error)
            if reaper is not None:
                reaper.reap()
        else:
            if reaper is not None:
                reaper.forget()
        del engine
        gc.collect()

    def info(self) -> BackendInfo:
        spec, settings = self._spec, self._settings
        return BackendInfo(
            name=self.name,
            model=spec.name if spec else "",
            device=self._device,
            memory_mb=float(settings.memory_mb) if settings else 0.0,
            context_tokens=settings.max_model_len if settings else 0,
            fim=spec.fim if spec else False,
        )

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        engine, settings = self._engine, self._settings
        if engine is None or settings is None:
            raise BackendError("no model loaded")
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        ids: list[int] = list(engine.get_tokenizer().encode(request.prompt))
        room = max(1, settings.max_model_len - max(1, request.max_tokens))
        if len(ids) > room:
            ids = ids[len(ids) - room :]  # keep the text right before the cursor
        params = SamplingParams(
            max_tokens=max(1, min(request.max_tokens, settings.max_model_len - len(ids))),
            temperature=request.temperature,
            stop=list(request.stop) or None,
            output_kind=RequestOutputKind.DELTA,
        )
        request_id = f"companion-{next(self._ids)}"
        started = time.perf_counter()
        if request.should_stop():
            yield Chunk(text="", tokens=0, finish_reason=stop_reason(request))
            return
        engine.add_request(request_id, _engine_input(engine, ids), params)
        finish, finished, first = "length", False, True
        try:
            while not finished:
                if not self._wait_for_output(request):
                    finish = stop_reason(request)
                    break
                try:
                    outputs = engine.step()
                except Exception as error:
                    raise BackendError(f"vLLM engine failed: {error}") from error
                for output in outputs:
                    if output.request_id != request_id or not output.outputs:
                        continue
                    completion = output.outputs[0]
                    if output.finished:
                        finished = True
                        finish = FINISH_REASONS.get(str(completion.finish_reason), "stop")
                    if not completion.token_ids and not completion.text:
                        continue
                    chunk = Chunk(text=completion.text, tokens=len(completion.token_ids))
                    if first:
                        chunk.prompt_tokens = len(ids)
                        chunk.cached_tokens = int(output.num_cached_tokens or 0)
                        chunk.prefill_ms = (time.perf_counter() - started) * 1000
                        first = False
                    yield chunk
                if not finished and request.should_stop():
                    finish = stop_reason(request)
                    break
                if not finished and not engine.has_unfinished_requests():
                    break  # aborted by the engine itself
        finally:
            if not finished:  # cancelled, past the deadline, or the reader stopped
                self._abort(request_id)
        yield Chunk(text="", tokens=0, finish_reason=finish)

    def _wait_for_output(self, request: GenerationRequest) -> bool:
        """Wait until the engine has output for `step()`, False if the request stops first.
        `step()` would block on the engine's queue through a whole prefill; waiting here,
        in slices, lets a cancel abort the request while the engine still computes."""
        outputs = getattr(self._engine.engine_core, "outputs_queue", None)
        if not isinstance(outputs, queue.Queue):
            return not request.should_stop()  # in-process engine: step() computes
        while True:
            with outputs.not_empty:  # the condition queue.put() notifies
                if outputs.not_empty.wait_for(lambda: bool(outputs.queue), WAIT_SLICE_S):
                    return True
            if request.should_stop():
                return False

    def _abort(self, request_id: str) -> None:
        engine = self._engine
        if engine is None:
            return
        try:
            engine.abort_request([request_id])
        except Exception as error:  # the engine died: the next request reports it
            log.warning("vLLM abort of %s failed: %s", request_id, error)


# The reaper, run with `python -c`: it reads "PID CREATE_TIME" lines, and when its stdin
# ends without "forget" (the server is gone) or the server's pid stops being its parent,
# it terminates those processes (then kills what is left after REAP_GRACE_S).
REAP_GRACE_S = 5.0
REAPER_CODE = f"""
import os, select, signal, sys
import psutil
signal.signal(signal.SIGINT, signal.SIG_IGN)
parent, targets, pending = os.getppid(), {{}}, b""
while True:
    ready, _, _ = select.select([0], [], [], 1.0)
    if not ready:
        if os.getppid() != parent:
            break
        continue
    data = os.read(0, 4096)
    if not data:
        break
    *lines, pending = (pending + data).split(b"\\n")
    for line in lines:
        if line == b"forget":
            sys.exit(0)
        pid, created = line.split()
        targets[int(pid)] = float(created)
alive = []
for pid, created in targets.items():
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - created) < 0.5:
            process.terminate()
            alive.append(process)
    except psutil.Error:
        pass
_, left = psutil.wait_procs(alive, timeout={REAP_GRACE_S})
for process in left:
    try:
        process.kill()
    except psutil.Error:
        pass
"""


def descendants() -> dict[int, float]:
    """This process's descendants (pid → creation time), but multiprocessing's resource
    tracker, which must outlive the engine to clean up after it and exits by itself."""
    try:
        import psutil

        found: dict[int, float] = {}
        for child in psutil.Process().children(recursive=True):
            try:
                if "resource_tracker" not in " ".join(child.cmdline()):
                    found[child.pid] = child.create_time()
            except psutil.Error:
                continue
        return found
    except Exception:  # psutil refused: no reaping, the engine still runs
        return {}


class Reaper:
    """Ends the engine's processes if this server dies without unloading the engine."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    @classmethod
    def start(cls, targets: dict[int, float]) -> Reaper | None:
        if not targets:
            return None
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", REAPER_CODE],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,  # fd 1 may be the LSP protocol
                start_new_session=True,  # survives the server's process group
            )
            assert process.stdin is not None
            process.stdin.write("".join(f"{pid} {t!r}\n" for pid, t in targets.items()).encode())
            process.stdin.flush()
        except (OSError, ValueError) as error:
            log.warning("vLLM: no reaper for the engine's processes (%s)", error)
            return None
        return cls(process)

    def forget(self) -> None:
        """The engine shut down by itself: the reaper leaves without doing anything."""
        self._finish(b"forget\n")

    def reap(self) -> None:
        """End the engine's processes now (they did not shut down)."""
        self._finish(b"")

    def _finish(self, command: bytes) -> None:
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(command)
            self._process.stdin.close()
            self._process.wait(timeout=REAP_GRACE_S + 5)
        except (OSError, ValueError, subprocess.TimeoutExpired) as error:
            log.warning("vLLM reaper: %s", error)


def _engine_input(engine: Any, ids: list[int]) -> Any:
    """Token ids as the engine takes them (rendered when this vLLM has a renderer)."""
    prompt = {"prompt_token_ids": ids}
    render = getattr(getattr(engine, "renderer", None), "render_cmpl", None)
    if render is None:
        return prompt
    try:
        return render([prompt])[0]
    except Exception:  # an older renderer signature: raw token prompts still work
        return prompt


def _has_gguf_quantization(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return bool((config.get("quantization_config") or {}).get("quant_method") == "gguf")


def _cpu_pool(hw: Hardware) -> MemoryPool:
    """On a CPU vLLM takes its share of the worker's NUMA node, as vLLM itself counts it."""
    try:
        from vllm.utils.cpu_resource_utils import get_memory_node_info

        node = get_memory_node_info(0)
        return MemoryPool(int(node.total_memory // _MB), int(node.available_memory // _MB))
    except Exception:  # another vLLM version: the whole machine's RAM
        return MemoryPool(hw.total_ram_mb, hw.available_ram_mb)


def _start_failure(model: ModelSpec, error: Exception) -> str:
    """A user-facing line for an engine that did not start."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    hint = ""
    if "root cause" in reason or "initialization failed" in reason:
        hint = " (vLLM's reason is in the Companion log just above)"
    elif "memory" in reason.lower():
        hint = " (lower companion.contextTokens or free memory)"
    return f"vLLM could not start {model.name}: {reason}{hint}"
