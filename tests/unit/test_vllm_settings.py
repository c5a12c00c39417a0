"""vLLM engine arguments from the hardware tier (pure: no vLLM needed), and the reaper
that ends the engine's processes when their parent dies."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped,unused-ignore]
import pytest

from companion.backends.base import BackendError, ModelSpec
from companion.backends.vllm import VllmBackend, model_directory
from companion.backends.vllm_reaper import read_targets
from companion.backends.vllm_sizing import (
    CPU_BATCHED_TOKENS,
    GPU_BATCHED_TOKENS,
    MemoryPool,
    ModelShape,
    engine_settings,
    has_gguf_quantization,
    read_shape,
)
from companion.models.hardware import Hardware

GB = 1024
# SmolLM2-135M in bf16: 30 layers, 3 KV heads of 64 → 23,040 bytes of KV per token.
SMALL = ModelShape(weights_mb=258, kv_bytes_per_token=23_040, max_positions=8192)
# A 7B model in bf16 with grouped-query attention.
LARGE = ModelShape(weights_mb=14_500, kv_bytes_per_token=131_072, max_positions=32_768)


def gpu(free_gb: float, total_gb: float = 80) -> Hardware:
    return Hardware(64 * GB, 48 * GB, 16, "Linux", "x86_64", False, True,
                    "NVIDIA H100 80GB HBM3", int(total_gb * GB), int(free_gb * GB))


def cpu(available_gb: float, total_gb: float = 32) -> Hardware:
    return Hardware(int(total_gb * GB), int(available_gb * GB), 2, "Linux", "x86_64", False,
                    False)


@pytest.mark.parametrize(
    ("free_gb", "context", "weights", "quantization"),
    [
        (70, 8192, "bf16", None),  # ≥ 32 GB: 16-bit, 8k
        (20, 4096, "fp8 (quantized on load)", "fp8"),  # ≥ 16 GB: "4-bit", 4k
        (12, 2048, "fp8 (quantized on load)", "fp8"),  # below: smallest, 2k
    ],
)
def test_gpu_tiers(free_gb: float, context: int, weights: str, quantization: str | None) -> None:
    settings = engine_settings(gpu(free_gb), 8192, SMALL, ampere=True)
    assert settings.max_model_len == context
    assert settings.weights == weights
    assert settings.quantization == quantization
    assert settings.dtype == "bfloat16"
    assert not settings.enforce_eager  # CUDA graphs on a GPU
    assert settings.max_num_batched_tokens == GPU_BATCHED_TOKENS


def test_gpu_before_ampere_keeps_16_bit_lets_vllm_pick_the_dtype_and_says_why() -> None:
    settings = engine_settings(gpu(20), 8192, SMALL, ampere=False)
    assert settings.quantization is None
    assert settings.weights == "16-bit" and settings.dtype == "auto"  # no bf16 before sm80
    assert any("cannot quantize" in note for note in settings.notes)
    assert engine_settings(gpu(70), 8192, SMALL, ampere=False).dtype == "auto"


def test_fp8_halves_the_weights_in_the_memory_asked_for() -> None:
    sixteen = engine_settings(gpu(24), 4096, LARGE, ampere=False)
    eight = engine_settings(gpu(24), 4096, LARGE, ampere=True)
    assert sixteen.memory_mb - eight.memory_mb == pytest.approx(LARGE.weights_mb / 2 * 1.1, 1)


def test_utilization_is_sized_to_the_model_not_vllms_default() -> None:
    settings = engine_settings(gpu(70), 8192, SMALL, ampere=True)
    assert settings.gpu_memory_utilization < 0.1  # not 0.92 of an 80 GB GPU for 135M
    assert settings.gpu_memory_utilization * 80 * GB >= settings.memory_mb
    # Weights, runtime and several whole contexts of KV cache for prefix reuse.
    assert settings.memory_mb >= SMALL.weights_mb + 4 * 8192 * SMALL.kv_bytes_per_token / 2**20


def test_cpu_gets_a_share_of_ram_that_is_free_and_eager_chunked_prefill() -> None:
    pool = MemoryPool(total_mb=10 * GB, free_mb=8 * GB)  # a NUMA node, as vLLM counts it
    settings = engine_settings(cpu(23), 2048, SMALL, pool)
    assert settings.quantization is None and settings.dtype == "auto"
    assert settings.enforce_eager  # torch.compile: minutes of start-up, no faster on CPU
    assert settings.max_num_batched_tokens == CPU_BATCHED_TOKENS
    assert 0.1 <= settings.gpu_memory_utilization <= 0.25  # 0.2 starts, 0.92 refuses
    assert pool.total_mb * settings.gpu_memory_utilization <= pool.free_mb
    assert settings.gpu_memory_utilization == math.ceil(
        settings.memory_mb / pool.total_mb * 100) / 100


def test_cpu_in_a_4_bit_tier_explains_the_16_bit_weights() -> None:
    settings = engine_settings(cpu(20), 4096, SMALL, MemoryPool(32 * GB, 20 * GB), ampere=True)
    assert settings.max_model_len == 4096
    assert settings.quantization is None
    assert any("on a CPU" in note for note in settings.notes)


@pytest.mark.parametrize(
    ("spec_context", "positions", "expected"),
    [(1536, 8192, 1536), (8192, 1024, 1024), (100_000, 200_000, 8192)],
)
def test_context_never_exceeds_the_spec_the_model_or_the_tier(
    spec_context: int, positions: int, expected: int
) -> None:
    shape = ModelShape(SMALL.weights_mb, SMALL.kv_bytes_per_token, positions)
    assert engine_settings(gpu(70), spec_context, shape).max_model_len == expected


def test_memory_budget_caps_the_tier() -> None:
    settings = engine_settings(gpu(70), 8192, SMALL, budget_mb=8 * GB)
    assert settings.max_model_len == 2048


def test_prequantized_checkpoint_keeps_its_method() -> None:
    shape = ModelShape(4_000, 131_072, 32_768, quantization="awq")
    settings = engine_settings(gpu(20), 4096, shape, ampere=True)
    assert settings.quantization is None  # vLLM reads the method from config.json
    assert settings.weights == "awq checkpoint"
    assert settings.dtype == "auto"


def test_too_little_memory_is_an_actionable_error() -> None:
    with pytest.raises(BackendError, match=r"contextTokens.*smaller model"):
        engine_settings(gpu(6, total_gb=8), 2048, LARGE)
    with pytest.raises(BackendError, match="MB of RAM"):
        engine_settings(cpu(2), 2048, SMALL, MemoryPool(4 * GB, 1 * GB))


def _model_dir(tmp_path: Path, config: dict[str, object]) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 2**20)
    return tmp_path


def test_read_shape_of_a_gguf_conversion(tmp_path: Path) -> None:
    folder = _model_dir(tmp_path, {
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        "hidden_size": 576, "max_position_embeddings": 8192,
        "quantization_config": {"quant_method": "gguf", "dequantize": False},
    })
    shape = read_shape(folder)
    assert shape == ModelShape(1.0, 23_040, 8192, None)  # the gguf leftover is no method
    assert has_gguf_quantization(folder)  # which vLLM is told to ignore


def test_read_shape_of_a_multimodal_config_and_a_quantized_one(tmp_path: Path) -> None:
    folder = _model_dir(tmp_path, {
        "text_config": {"num_hidden_layers": 2, "num_attention_heads": 4, "head_dim": 32,
                        "max_position_embeddings": 4096},
        "quantization_config": {"quant_method": "gptq"},
    })
    shape = read_shape(folder)
    assert not has_gguf_quantization(folder)
    assert shape.kv_bytes_per_token == 2 * 2 * 4 * 32 * 2
    assert shape.max_positions == 4096
    assert shape.quantization == "gptq"


def test_read_shape_of_a_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="not a model directory"):
        read_shape(tmp_path)


def test_uncached_hub_id_says_how_to_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    spec = ModelSpec(name="Qwen/Qwen2.5-Coder-1.5B", path="Qwen/Qwen2.5-Coder-1.5B",
                     family="qwen")
    with pytest.raises(BackendError, match="companion models pull"):
        model_directory(spec)


def test_backend_without_a_model_refuses_to_generate() -> None:
    from companion.backends.base import GenerationRequest

    backend = VllmBackend()
    assert backend.info().model == ""
    with pytest.raises(BackendError, match="no model loaded"):
        next(iter(backend.stream(GenerationRequest(prompt="x"))))


# -- the reaper: vLLM's processes must not outlive a server killed without unloading ---------

PARENT = """
import subprocess, sys, time
from companion.backends.vllm_reaper import Reaper, descendants
engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
time.sleep(0.2)
reaper = Reaper.start(descendants())
print(engine.pid, reaper is not None, flush=True)
if sys.argv[1] == "forget":
    reaper.forget()
    print("forgot", flush=True)
time.sleep(120)  # killed by the test, like a server the editor kills
"""


def _start_parent(mode: str) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE,
                              text=True)
    assert parent.stdout is not None
    pid, started = parent.stdout.readline().split()
    assert started == "True"
    if mode == "forget":
        assert parent.stdout.readline().strip() == "forgot"
    return parent, int(pid)


def test_reaper_ends_the_engine_when_the_server_is_killed() -> None:
    parent, engine_pid = _start_parent("keep")
    engine = psutil.Process(engine_pid)
    parent.kill()
    parent.wait()
    gone, alive = psutil.wait_procs([engine], timeout=10)
    assert gone and not alive


def test_a_forgotten_engine_is_left_alone() -> None:
    parent, engine_pid = _start_parent("forget")
    engine = psutil.Process(engine_pid)
    try:
        parent.kill()
        parent.wait()
        time.sleep(1.5)  # longer than the reaper's look at its parent
        assert engine.is_running() and engine.status() != psutil.STATUS_ZOMBIE
    finally:
        engine.kill()


def test_the_reaper_reads_its_targets_until_the_end_or_forget() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"12 1.5\n34 2")
    os.write(write_end, b".25\n")
    os.close(write_end)  # the parent is gone
    assert read_targets(read_end, os.getppid()) == {12: 1.5, 34: 2.25}
    os.close(read_end)
    read_end, write_end = os.pipe()
    os.write(write_end, b"12 1.5\nforget\n")
    assert read_targets(read_end, os.getppid()) is None
    os.close(read_end)
    os.close(write_end)
