"""vLLM in process (`LLMEngine`), with automatic prefix caching: a keystroke reuses the KV
blocks of the prompt it shares with the previous one.

The engine runs in child processes (vLLM's EngineCore and its worker); this thread adds
requests, waits for the engine's output queue with the cancel flag in view, and aborts the
request in the engine when the flag is set, the deadline passes or the consumer stops
reading. What the engine may use comes from the hardware tier (`vllm_sizing`, pure).

Process hygiene, because fd 1 carries the LSP protocol: vLLM logs to stdout by default,
so VLLM_LOGGING_STREAM is pointed at stderr before vLLM is first imported; the children
are spawned (not forked from a threaded server) and inherit fd 1, which `companion serve`
has already pointed at stderr. vLLM's children outlive a server that dies without
unloading (killed by the editor, or stdin closed: `serve` then leaves with os._exit), so a
small reaper process (`vllm_reaper`) ends them when that happens. The engine never touches
the network: models load from local directories only, with HF_HUB_OFFLINE=1 and usage
statistics off.
vLLM is imported lazily, so this module imports without it.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import os
import queue
import time
from collections.abc import Iterator
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
from companion.backends.vllm_reaper import Reaper, descendants
from companion.backends.vllm_sizing import (
    MB,
    EngineSettings,
    MemoryPool,
    engine_settings,
    has_gguf_quantization,
    memory_pool,
    read_shape,
)
from companion.models.hardware import Hardware

log = logging.getLogger(__name__)

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


def model_directory(spec: ModelSpec) -> Path:
    """A local safetensors directory for `spec`: an embedded/local GGUF is converted once
    (cached), a hub id must already be in the Hugging Face cache."""
    if spec.path.endswith(".gguf"):
        from companion.backends.convert import ensure_safetensors

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
        if shape.quantization is None and has_gguf_quantization(folder):
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


def _cpu_pool(hw: Hardware) -> MemoryPool:
    """On a CPU vLLM takes its share of the worker's NUMA node, as vLLM itself counts it."""
    try:
        from vllm.utils.cpu_resource_utils import get_memory_node_info

        node = get_memory_node_info(0)
        return MemoryPool(int(node.total_memory // MB), int(node.available_memory // MB))
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
