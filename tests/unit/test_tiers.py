"""Tiers and the degradation ladder, on simulated machines."""

from __future__ import annotations

import dataclasses

import pytest

from companion.models import catalog, tiers
from companion.models.hardware import Hardware

GB = 1024


def cpu(available_gb: float, total_gb: float | None = None) -> Hardware:
    available = int(available_gb * GB)
    total = int((total_gb or available_gb * 1.25) * GB)
    return Hardware(total, available, 8, "Linux", "x86_64", False, False)


def cuda(gpu_free_gb: float, ram_gb: float = 16) -> Hardware:
    return Hardware(
        int(ram_gb * GB),
        int(ram_gb * GB * 0.8),
        16,
        "Linux",
        "x86_64",
        False,
        True,
        "NVIDIA H100 80GB HBM3",
        int(gpu_free_gb * GB),
        int(gpu_free_gb * GB),
    )


def apple(available_gb: float, total_gb: float) -> Hardware:
    return Hardware(int(total_gb * GB), int(available_gb * GB), 10, "Darwin", "arm64", True, False)


@pytest.mark.parametrize(
    ("hw", "quantization", "context"),
    [
        (cpu(64), "bf16", 8192),
        (cpu(32), "bf16", 8192),
        (cpu(24), "q4", 4096),
        (cpu(16), "q4", 4096),
        (cpu(8), "q4", 2048),
        (cpu(1), "q4", 2048),
        (cuda(80, ram_gb=16), "bf16", 8192),  # the GPU's memory decides, not the RAM
        (cuda(12, ram_gb=128), "q4", 2048),
        (apple(12, 16), "q4", 2048),
        (apple(40, 64), "bf16", 8192),
    ],
)
def test_tier_follows_the_seed_table(hw: Hardware, quantization: str, context: int) -> None:
    tier = tiers.tier_for(hw)
    assert (tier.quantization, tier.context_tokens) == (quantization, context)


def test_budget_caps_the_memory_considered() -> None:
    assert tiers.tier_for(cpu(64), budget_mb=20 * GB).quantization == "q4"
    assert tiers.tier_for(cpu(64), budget_mb=8 * GB).context_tokens == 2048
    assert tiers.usable_memory_mb(cuda(80), budget_mb=500) == 500
    assert tiers.usable_memory_mb(cpu(4), budget_mb=0) == 4 * GB


@pytest.mark.parametrize("requested", [None, "", "auto", "AUTO"])
def test_nothing_configured_means_the_embedded_model(requested: str | None) -> None:
    choice = tiers.choose(requested, cpu(8))
    assert choice.model is not None and choice.model.embedded
    assert choice.quantization == "q4" and choice.steps == []
    assert choice.source and choice.source.endswith(".gguf")
    assert "embedded" in choice.reason


def test_64_gb_runs_the_configured_model_at_16_bit_with_8k_context() -> None:
    choice = tiers.choose("qwen2.5-coder-1.5b", cpu(64))
    assert (choice.name, choice.quantization, choice.context_tokens) == (
        "qwen2.5-coder-1.5b",
        "bf16",
        8192,
    )
    assert choice.source == catalog.get("qwen2.5-coder-1.5b").sources["gguf-bf16"]  # type: ignore[union-attr]
    assert choice.steps == []


def test_16_bit_in_transformers_format_uses_the_hub_repo() -> None:
    choice = tiers.choose("qwen2.5-coder-7b", cpu(64), fmt="hf")
    assert (choice.name, choice.quantization, choice.source) == (
        "qwen2.5-coder-7b",
        "bf16",
        "Qwen/Qwen2.5-Coder-7B",
    )


def test_without_a_16_bit_gguf_file_the_ladder_takes_4_bit() -> None:
    choice = tiers.choose("qwen2.5-coder-7b", cpu(64))
    assert (choice.name, choice.quantization) == ("qwen2.5-coder-7b", "q4")
    assert choice.steps == ["qwen2.5-coder-7b has no gguf download at bf16 → trying q4"]


def test_24_gb_runs_it_at_4_bit_with_4k_context() -> None:
    choice = tiers.choose("Qwen/Qwen2.5-Coder-7B", cpu(24))
    assert (choice.name, choice.quantization, choice.context_tokens) == (
        "qwen2.5-coder-7b",
        "q4",
        4096,
    )
    assert choice.source == catalog.get("qwen2.5-coder-7b").sources["gguf"]  # type: ignore[union-attr]


def test_8_gb_keeps_a_7b_model_at_4_bit_with_2k_context() -> None:
    choice = tiers.choose("qwen2.5-coder-7b", cpu(8))
    assert (choice.name, choice.quantization, choice.context_tokens) == (
        "qwen2.5-coder-7b",
        "q4",
        2048,
    )


def test_1_gb_steps_down_the_family_and_records_each_step() -> None:
    choice = tiers.choose("qwen2.5-coder-7b", cpu(1))
    assert choice.name == "qwen2.5-coder-0.5b"
    assert len(choice.steps) == 3
    for step, model_id in zip(choice.steps, ["7b", "3b", "1.5b"], strict=True):
        assert f"qwen2.5-coder-{model_id} needs ~" in step and "only 1024 MB free" in step
    assert choice.steps[-1].endswith("→ trying smaller: qwen2.5-coder-0.5b")
    assert "qwen2.5-coder-0.5b at q4" in choice.reason


def test_too_big_for_the_budget_steps_down_with_reasons() -> None:
    choice = tiers.choose("qwen2.5-coder-7b", cpu(64), budget_mb=3100)
    assert choice.name == "qwen2.5-coder-3b" and choice.quantization == "q4"
    needed = tiers.estimate_mb(catalog.get("qwen2.5-coder-7b"), "q4", 2048)  # type: ignore[arg-type]
    assert choice.steps == [
        f"qwen2.5-coder-7b needs ~{needed} MB at q4, only 3100 MB within memoryBudgetMB "
        "→ trying smaller: qwen2.5-coder-3b"
    ]


def test_bf16_that_does_not_fit_falls_back_to_4_bit_first(monkeypatch: pytest.MonkeyPatch) -> None:
    big = dataclasses.replace(
        catalog.get("qwen2.5-coder-7b"),  # type: ignore[type-var]
        id="big-14b",
        family="big",
        weights_mb={"q4": 8500, "q8": 15500, "bf16": 31000},
        sources={"gguf": "o/r/big-q4.gguf", "gguf-bf16": "o/r/big-bf16.gguf", "hf": "o/big"},
    )
    monkeypatch.setattr(catalog, "_MODELS", (*catalog.all_models(), big))
    choice = tiers.choose("big-14b", cpu(33))  # 16-bit tier, but 30 GB of weights + overhead
    assert (choice.name, choice.quantization, choice.context_tokens) == ("big-14b", "q4", 8192)
    assert len(choice.steps) == 1
    assert choice.steps[0].startswith("big-14b needs ~") and choice.steps[0].endswith(
        "at bf16, only 33792 MB free → trying q4"
    )


def test_cuda_80_gb_runs_gpt_oss_at_16_bit() -> None:
    choice = tiers.choose("gpt-oss-20b", cuda(80), fmt="hf")
    assert (choice.name, choice.quantization, choice.context_tokens) == (
        "gpt-oss-20b",
        "bf16",
        8192,
    )
    assert tiers.choose("gpt-oss-20b", cuda(80)).quantization == "q4"  # GGUF: MXFP4/Q4 file only


def test_gpu_only_model_on_a_cpu_machine_goes_to_the_embedded_model() -> None:
    choice = tiers.choose("gpt-oss-20b", cpu(64))
    assert choice.model is not None and choice.model.embedded
    assert choice.steps == [
        "gpt-oss-20b needs a GPU (CUDA or Apple Silicon), none here → embedded model"
    ]


def test_apple_silicon_16_gb_uses_unified_memory() -> None:
    hw = apple(12, 16)
    assert tiers.choose("qwen2.5-coder-7b", hw, fmt="mlx").name == "qwen2.5-coder-7b"
    choice = tiers.choose("gpt-oss-20b", hw)  # allowed on Apple Silicon, but 12 GB is too little
    assert choice.model is not None and choice.model.embedded
    assert "gpt-oss-20b needs ~" in choice.steps[0]


def test_budget_50_mb_means_templates() -> None:
    choice = tiers.choose(None, cpu(64), budget_mb=50)
    assert choice.model is None and choice.quantization is None and choice.name == "templates"
    assert "templates" in choice.reason
    assert choice.steps and choice.steps[-1].endswith("→ templates")


def test_budget_200_mb_still_fits_the_embedded_model() -> None:
    choice = tiers.choose(None, cpu(64), budget_mb=200)
    assert choice.model is not None and choice.model.id == catalog.EMBEDDED_ID
    assert choice.context_tokens == 2048


def test_budget_200_mb_walks_a_configured_model_all_the_way_down() -> None:
    choice = tiers.choose("qwen2.5-coder-1.5b", cpu(64), budget_mb=200)
    assert choice.model is not None and choice.model.embedded
    assert [step.split(" needs")[0] for step in choice.steps] == [
        "qwen2.5-coder-1.5b",
        "qwen2.5-coder-0.5b",
    ]
    assert choice.steps[-1].endswith("→ embedded model")


def test_unknown_model_is_recorded_and_the_ladder_continues() -> None:
    choice = tiers.choose("someone/unknown-model", cpu(16))
    assert choice.model is not None and choice.model.embedded
    assert "not in the catalog" in choice.steps[0]


def test_formats_limit_the_quantization() -> None:
    assert tiers.choose("qwen2.5-coder-1.5b", cpu(64), fmt="mlx").quantization == "q4"
    assert tiers.choose("qwen2.5-coder-1.5b", cpu(8), fmt="hf").quantization == "bf16"
    choice = tiers.choose("deepseek-coder-1.3b-base", cpu(24), fmt="mlx")
    assert choice.model is not None and choice.model.embedded
    assert "no mlx download" in choice.steps[0]


@pytest.mark.parametrize("requested", [None, *(model.id for model in catalog.all_models())])
@pytest.mark.parametrize(
    "memory_mb", [0, 40, 150, 190, 600, 1500, 3000, 6000, 9000, 20000, 45000, 90000]
)
@pytest.mark.parametrize("machine", ["cpu", "cuda", "apple"])
def test_a_chosen_model_always_fits(requested: str | None, memory_mb: int, machine: str) -> None:
    hw = {"cpu": cpu, "cuda": cuda, "apple": lambda gb: apple(gb, gb * 1.5)}[machine](
        memory_mb / GB
    )
    for budget in (0, memory_mb // 2):
        choice = tiers.choose(requested, hw, budget_mb=budget)
        if choice.model is None:
            continue
        assert choice.quantization is not None
        needed = tiers.estimate_mb(choice.model, choice.quantization, choice.context_tokens)
        assert needed <= tiers.usable_memory_mb(hw, budget)
        assert tiers.fits(choice.model, choice.quantization, hw, budget, choice.context_tokens)


def test_fits_refuses_what_exceeds_free_memory() -> None:
    model = catalog.get("qwen2.5-coder-1.5b")
    assert model is not None
    needed = tiers.estimate_mb(model, "q4", 2048)
    assert tiers.fits(model, "q4", cpu(needed / GB), context_tokens=2048)
    assert not tiers.fits(model, "q4", cpu((needed - 1) / GB), context_tokens=2048)
    assert not tiers.fits(model, "q4", cpu(64), budget_mb=needed - 1, context_tokens=2048)
    assert not tiers.fits(model, "fp8", cpu(64))
