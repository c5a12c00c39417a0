"""MLX through mlx-lm: the engine for Apple Silicon (Metal), also runnable on a CPU.

Loads any mlx-lm model directory, a hub id already in the local Hugging Face cache (never
downloads), or the embedded GGUF (converted once to safetensors by `backends.convert`).
Prefix reuse: the KV prompt cache and the token ids it holds survive between requests;
a new prompt trims the cache to the longest common token prefix and only its new tail is
evaluated. The prefill runs in small chunks and the decode loop checks the request
between tokens, so a superseded request stops quickly. mlx and mlx-lm load lazily.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import time
from collections.abc import Generator, Iterator
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
from companion.backends.tokens import common_prefix_length

log = logging.getLogger(__name__)

# Tokens evaluated between two looks at the cancel flag. MLX on a CPU (Linux wheels use
# the reference BLAS, one core) evaluates only ~10-30 prompt tokens/s, so a chunk there
# must be small for a superseded request to stop within a second or so; Metal does
# thousands of tokens/s and wants big chunks.
PREFILL_CHUNK_CPU = 16
PREFILL_CHUNK_GPU = 512

# Weights on a CPU. MLX's Linux CPU wheel links the single-threaded reference BLAS, has no
# fast kernel for quantized matmuls and exposes no thread count. A keystroke costs a few new
# prompt tokens and tens of decoded ones, so float32's faster decode wins (measured on 2
# cores with the embedded model: decode 8.1 tok/s against bfloat16's 5.5, 8-bit's 1.0;
# 10 new + 20 decoded tokens in 3.2 s against 4.1 s); bfloat16 keeps the memory of larger
# models in check. Metal keeps the weights as shipped.
CPU_FLOAT32_MAX_MB = 1024  # float32 for models up to ~250M parameters, else bfloat16

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

# mlx-lm architectures whose Model.__call__ is `self.model(inputs, cache)` followed by the
# output head: the prefill calls the inner model and skips the head, whose logits for
# every prompt token would be thrown away (~15% of a CPU prefill for SmolLM2's 49k vocab;
# on Metal it saves a chunk × vocab logits buffer).
_HEADLESS_PREFILL = frozenset(
    {"llama", "qwen2", "qwen3", "starcoder2", "phi3", "deepseek", "gemma3_text"}
)


class MlxBackend:
    """mlx-lm models on Metal (Apple Silicon) or the MLX CPU backend."""

    name = "mlx"
    capabilities = Capabilities()

    def __init__(self) -> None:
        self._model: Any = None
        self._tokenizer: Any = None
        self._spec: ModelSpec | None = None
        self._cache: list[Any] = []
        self._cache_ids: list[int] = []
        self._body: Any = None  # what the prefill calls: the model, or its headless body
        self._device = "cpu"


    def load(self, model: ModelSpec) -> None:
        try:
            import mlx.core as mx
            from mlx_lm.utils import load as load_model_and_tokenizer
        except ImportError as error:
            raise BackendError(
                f"the mlx backend needs mlx and mlx-lm (pip install 'companion[mlx]'): {error}"
            ) from error
        folder = model_directory(model.path)
        self.unload()
        try:
            # An existing folder: mlx-lm's loader never reaches the hub for it.
            loaded, tokenizer = load_model_and_tokenizer(str(folder))[:2]
            device = mx.default_device()
            on_gpu = device.type == mx.gpu
            weights = "as shipped"
            if not on_gpu:
                dtype = cpu_dtype(mx, loaded)
                if dtype is not None:
                    loaded.set_dtype(dtype)
                    weights = str(dtype).rsplit(".", 1)[-1]
            mx.eval(loaded.parameters())
        except Exception as error:  # FileNotFoundError, ValueError (unknown architecture) …
            raise BackendError(
                f"mlx-lm could not load {model.path}: {error.__class__.__name__}: {error}"
            ) from error
        self._model, self._tokenizer, self._spec = loaded, tokenizer, model
        self._body = prefill_body(loaded)
        self._device = device_name(mx, on_gpu)
        self._reset_cache()
        log.info("mlx: loaded %s from %s on %s (weights %s)", model.name, folder,
                 self._device, weights)

    def unload(self) -> None:
        self._model = self._tokenizer = self._spec = self._body = None
        self._cache, self._cache_ids = [], []
        gc.collect()
        try:
            import mlx.core as mx
        except ImportError:
            return
        mx.clear_cache()  # hand the freed buffers back to the system

    def info(self) -> BackendInfo:
        spec = self._spec
        memory = 0.0
        if self._model is not None:
            import mlx.core as mx

            memory = mx.get_active_memory() / 2**20
        return BackendInfo(
            name=self.name,
            model=spec.name if spec else "",
            device=self._device,
            memory_mb=round(memory, 1),
            context_tokens=spec.context_tokens if spec else 0,
            fim=spec.fim if spec else False,
        )

    def tokenize(self, text: str) -> list[int]:
        if self._tokenizer is None:
            raise BackendError("no model loaded")
        tokenizer = self._tokenizer
        # As mlx-lm's stream_generate: add BOS etc. unless the prompt already starts with it.
        bos = tokenizer.bos_token
        special = bos is None or not text.startswith(bos)
        ids: list[int] = list(tokenizer.encode(text, add_special_tokens=special))
        return ids

    def _reset_cache(self) -> None:
        from mlx_lm.models.cache import make_prompt_cache

        self._cache, self._cache_ids = make_prompt_cache(self._model), []

    def _reuse_cache(self, ids: list[int]) -> int:
        """Trim the KV cache to the prefix it shares with `ids` (at least one token of
        `ids` is left to evaluate, for its logits); how many tokens it keeps."""
        from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache

        held = len(self._cache_ids)
        keep = min(common_prefix_length(ids, self._cache_ids), len(ids) - 1)
        if keep == held:  # the cache holds a prefix of the new prompt: append to it
            return keep
        # Recurrent-state caches (Mamba-style layers) cannot be trimmed: start over.
        trimmable = keep > 0 and can_trim_prompt_cache(self._cache)
        # mlx-lm annotates trim_prompt_cache as returning a list; it returns the count.
        trimmed: Any = trim_prompt_cache(self._cache, held - keep) if trimmable else 0
        if trimmable and trimmed == held - keep:
            del self._cache_ids[keep:]
            return keep
        self._reset_cache()
        return 0

    def _prefill(self, ids: list[int], start: int, request: GenerationRequest) -> bool:
        """Evaluate ids[start:-1] into the cache in chunks, checking the request between
        chunks; False when stopped. What was evaluated stays cached for the next prompt."""
        import mlx.core as mx
        from mlx_lm.generate import generation_stream

        chunk = PREFILL_CHUNK_CPU if self._device == "cpu" else PREFILL_CHUNK_GPU
        end = len(ids) - 1
        with mx.stream(generation_stream):
            for position in range(start, end, chunk):
                if request.should_stop():
                    return False
                piece = ids[position : min(position + chunk, end)]
                self._body(mx.array(piece)[None], cache=self._cache)
                mx.eval([layer.state for layer in self._cache])
                self._cache_ids.extend(piece)
        return not request.should_stop()

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        if self._model is None or self._spec is None:
            raise BackendError("no model loaded")
        ids = self.tokenize(request.prompt)
        room = max(1, self._spec.context_tokens - request.max_tokens)
        if len(ids) > room:
            ids = ids[len(ids) - room :]  # keep the text right before the cursor
        if not ids:
            yield Chunk(text="", tokens=0, finish_reason="stop")
            return
        started = time.perf_counter()
        try:
            kept = self._reuse_cache(ids)
            if not self._prefill(ids, kept, request):
                yield Chunk(text="", tokens=0, finish_reason=stop_reason(request))
                return
            yield from self._decode(ids, kept, started, request)
        except BackendError:
            self._reset_cache()
            raise
        except Exception as error:  # an MLX error leaves the cache in an unknown state
            self._reset_cache()
            raise BackendError(
                f"mlx generation failed: {error.__class__.__name__}: {error}"
            ) from error

    def _decode(
        self, ids: list[int], kept: int, started: float, request: GenerationRequest
    ) -> Iterator[Chunk]:
        """Feed the last prompt token and generate; each yielded token is in the cache."""
        import mlx.core as mx
        from mlx_lm.generate import generate_step
        from mlx_lm.sample_utils import make_sampler

        tokenizer = self._tokenizer
        eos: set[int] = set(tokenizer.eos_token_ids)
        detokenizer = tokenizer.detokenizer
        sampler = make_sampler(temp=request.temperature) if request.temperature > 0 else None
        # generate_step evaluates one token ahead: when it yields token k, tokens up to k
        # are in the cache, so the cache stays in step with `self._cache_ids` below.
        # mlx-lm annotates the tokens as arrays; generate_step yields Python ints.
        steps: Generator[tuple[Any, Any], None, None] = generate_step(
            mx.array(ids[-1:]),
            self._model,
            max_tokens=max(1, request.max_tokens),
            sampler=sampler,
            prompt_cache=self._cache,
        )
        self._cache_ids.append(ids[-1])
        finish = "length"
        produced = 0
        timed = False

        def first_timed(chunk: Chunk) -> Chunk:
            """The prompt's numbers ride on the first chunk, even a lone final one."""
            nonlocal timed
            if not timed:
                chunk.prompt_tokens, chunk.cached_tokens = len(ids), kept
                chunk.prefill_ms = (time.perf_counter() - started) * 1000
                timed = True
            return chunk

        try:
            for yielded, _ in steps:
                token = int(yielded)
                self._cache_ids.append(token)
                if token in eos:
                    finish = "stop"
                    break
                produced += 1
                detokenizer.add_token(token)
                yield first_timed(Chunk(text=detokenizer.last_segment))
                if produced >= request.max_tokens:
                    break
                if request.should_stop():
                    finish = stop_reason(request)
                    break
        finally:
            steps.close()
            self._resync_cache()
        detokenizer.finalize()
        yield first_timed(Chunk(text=detokenizer.last_segment, tokens=0, finish_reason=finish))

    def _resync_cache(self) -> None:
        """Check that the token ids match what the cache holds after a stop (they do by
        construction; a KV cache that says otherwise is rebuilt, never trusted)."""
        from mlx_lm.models.cache import can_trim_prompt_cache

        if not self._cache or not can_trim_prompt_cache(self._cache):
            return  # recurrent caches report no size; the bookkeeping is exact anyway
        held = int(self._cache[0].size())
        if held < len(self._cache_ids):
            del self._cache_ids[held:]
        elif held > len(self._cache_ids):
            log.warning("mlx: KV cache holds %d tokens, expected %d: rebuilt",
                        held, len(self._cache_ids))
            self._reset_cache()


def cpu_dtype(mx: Any, model: Any) -> Any:
    """The dtype to cast a model's weights to on a CPU (see CPU_FLOAT32_MAX_MB), or None
    to keep them: quantized weights stay packed."""
    from mlx.utils import tree_flatten

    flat: list[tuple[str, Any]] = tree_flatten(model.parameters())  # type: ignore[assignment]
    parameters = [value for _, value in flat]
    if any(not mx.issubdtype(value.dtype, mx.floating) for value in parameters):
        return None
    float32_mb = sum(value.size for value in parameters) * 4 / 2**20
    return mx.float32 if float32_mb <= CPU_FLOAT32_MAX_MB else mx.bfloat16


def prefill_body(model: Any) -> Any:
    """The model without its output head where that is known to be safe, else the model."""
    architecture = type(model).__module__.rsplit(".", 1)[-1]
    body = getattr(model, "model", None)
    return body if architecture in _HEADLESS_PREFILL and callable(body) else model


def device_name(mx: Any, on_gpu: bool) -> str:
    """"metal" on Apple Silicon, "cuda"/"gpu" for other MLX GPU builds, else "cpu"."""
    if not on_gpu:
        return "cpu"
    if mx.metal.is_available():
        return "metal"
    cuda = getattr(mx, "cuda", None)
    if cuda is not None and cuda.is_available():
        return "cuda"
    return "gpu"


def model_directory(path: str) -> Path:
    """A local mlx-lm model folder for `path`: the embedded GGUF converted to
    safetensors, a folder, or a hub id found in the local Hugging Face cache."""
    if path.endswith(".gguf"):
        from companion.backends.convert import ensure_safetensors

        return ensure_safetensors(path)
    folder = Path(os.path.expanduser(path))
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise BackendError(f"{path} is not a model folder (it has no config.json)")
        return folder
    if folder.exists():
        raise BackendError(f"mlx needs a model folder or a GGUF file, got {path}")
    if _HUB_ID.match(path):
        from companion.models.resolve import find_in_hf_cache

        found = find_in_hf_cache(path)
        if found is None:
            raise BackendError(f"{path} is not downloaded: companion models pull {path}")
        return found
    raise BackendError(f"no such model folder: {path}")
