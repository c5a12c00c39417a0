"""How much of the machine vLLM may take for one model (pure: no vLLM needed).

The hardware tier picks the context and the weights' precision; the engine's memory share
(`gpu_memory_utilization`) is sized to the weights, the runtime and a few contexts of KV
cache, from the checkpoint's own config.json (`read_shape`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.backends.base import BackendError
from companion.models import tiers
from companion.models.hardware import Hardware

MB = 2**20
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
    kv_mb = max(MIN_KV_MB, KV_CONTEXTS * max_model_len * shape.kv_bytes_per_token / MB)
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
        weights_mb=weights / MB,
        kv_bytes_per_token=2 * layers * kv_heads * head_dim * 2,
        max_positions=int(text.get("max_position_embeddings") or 1 << 20),
        quantization=None if method in (None, "gguf") else str(method),
    )


def has_gguf_quantization(folder: Path) -> bool:
    """Whether `folder`'s config still says "gguf" (a GGUF conversion keeps it)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return bool((config.get("quantization_config") or {}).get("quant_method") == "gguf")
