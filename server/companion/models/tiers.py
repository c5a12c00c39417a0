"""Hardware tiers and the degradation ladder: which model to load, at which quantization.

Pure functions over a `Hardware` value, so tests can simulate any machine.

Tiers (seed requirement), by the memory a model may use:
  >= 32 GB -> 16-bit weights, 8k context;  >= 16 GB -> 4-bit, 4k;  below -> 4-bit, 2k.
"The memory a model may use" is free GPU memory on a CUDA machine, available unified RAM on
Apple Silicon, available RAM elsewhere, capped by `memoryBudgetMB` when that is set.

Ladder: the configured model (at the tier's quantization, else 4-bit) -> a smaller model of
the same family that fits -> the embedded default -> templates (no model). A model whose
estimated footprint exceeds that memory is never chosen. With nothing configured ("auto")
the embedded model is the default: it is the only model we know is present offline, and
the lowest tier's "smallest model" besides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from companion.models import catalog
from companion.models.catalog import CatalogModel
from companion.models.hardware import Hardware

_GB = 1024  # MiB per GiB: the tiers are stated in GB, memory is counted in MiB

# Which quantizations each download format can give. GGUF files exist at every level; the
# MLX sources are 4-bit conversions; "hf" means 16-bit safetensors (transformers / vLLM),
# since we do not assume bitsandbytes.
FORMAT_QUANTIZATIONS: dict[str, tuple[str, ...]] = {
    "gguf": ("q4", "q8", "bf16"),
    "mlx": ("q4",),
    "hf": ("bf16",),
}
AUTO = ("", "auto")


@dataclass(frozen=True)
class Tier:
    """The seed's hardware tier: quantization and context for the memory at hand."""

    name: str
    quantization: str  # "bf16" or "q4"
    context_tokens: int
    memory_mb: int = 0  # the memory this tier was derived from


@dataclass
class Choice:
    """The outcome of the ladder. `model` None means the templates backend."""

    model: CatalogModel | None
    quantization: str | None
    context_tokens: int
    steps: list[str] = field(default_factory=list)  # one line per step down, with the reason
    reason: str = ""  # one line: why this model (or why templates)
    source: str | None = None  # where to get the weights in the requested format
    tier: Tier | None = None

    @property
    def name(self) -> str:
        """What `companion/status` shows: a catalog id, or "templates"."""
        return self.model.id if self.model else "templates"


def usable_memory_mb(hw: Hardware, budget_mb: int = 0) -> int:
    """Memory a model may occupy: GPU free memory with CUDA, else available (unified) RAM,
    capped by the memory budget when one is set (> 0)."""
    free = hw.gpu_free_mb if hw.cuda and hw.gpu_free_mb is not None else hw.available_ram_mb
    return min(free, budget_mb) if budget_mb > 0 else free


def tier_for(hw: Hardware, budget_mb: int = 0) -> Tier:
    """The seed's tier for this machine (budget_mb > 0 caps the memory considered)."""
    memory = usable_memory_mb(hw, budget_mb)
    if memory >= 32 * _GB:
        return Tier("16-bit, 8k context", "bf16", 8192, memory)
    if memory >= 16 * _GB:
        return Tier("4-bit, 4k context", "q4", 4096, memory)
    return Tier("4-bit smallest, 2k context", "q4", 2048, memory)


def estimate_mb(model: CatalogModel, quantization: str, context_tokens: int) -> int:
    """Estimated resident memory of `model` at `quantization` with `context_tokens` of KV."""
    weights = model.weights_mb.get(quantization)
    if weights is None:
        raise KeyError(f"{model.id} has no {quantization} size in the catalog")
    context = min(context_tokens, model.context_length)
    return catalog.estimate_mb(weights, model.kv_kb_per_token, context)


def fits(
    model: CatalogModel,
    quantization: str,
    hw: Hardware,
    budget_mb: int = 0,
    context_tokens: int | None = None,
) -> bool:
    """True when the estimate fits in the usable memory and the machine can run the model.

    `context_tokens` defaults to the tier's context for this machine.
    """
    if model.requires_gpu and not (hw.cuda or hw.apple_silicon):
        return False
    if quantization not in model.weights_mb:
        return False
    context = (
        context_tokens if context_tokens is not None else tier_for(hw, budget_mb).context_tokens
    )
    return estimate_mb(model, quantization, context) <= usable_memory_mb(hw, budget_mb)


def source_for(model: CatalogModel, fmt: str, quantization: str) -> str | None:
    """The download for `fmt` at `quantization`: "gguf-q8" before "gguf", and so on."""
    if fmt == "gguf" and quantization != "q4":
        return model.sources.get(f"gguf-{quantization}")
    return model.sources.get(fmt)


def _quantizations_to_try(tier: Tier, fmt: str) -> list[str]:
    """The tier's quantization, then 4-bit, limited to what the format offers."""
    offered = FORMAT_QUANTIZATIONS.get(fmt, ("q4",))
    wanted = [q for q in dict.fromkeys((tier.quantization, "q4")) if q in offered]
    return wanted or list(offered)


def _where(hw: Hardware, budget_mb: int) -> str:
    """How to name the memory limit in messages: the budget when it is what binds."""
    return "within memoryBudgetMB" if 0 < budget_mb < usable_memory_mb(hw) else "free"


def _try_model(
    model: CatalogModel,
    hw: Hardware,
    budget_mb: int,
    fmt: str,
    tier: Tier,
    steps: list[str],
    next_hint: str,
) -> Choice | None:
    """The first quantization of `model` that fits, or None with the reasons in `steps`.

    `next_hint` ends the last step line: what the ladder tries after this model.
    """
    free = usable_memory_mb(hw, budget_mb)
    where = _where(hw, budget_mb)
    if model.requires_gpu and not (hw.cuda or hw.apple_silicon):
        steps.append(f"{model.id} needs a GPU (CUDA or Apple Silicon), none here → {next_hint}")
        return None
    context = min(tier.context_tokens, model.context_length)
    # The embedded model ships as one 4-bit GGUF file whatever format the backend prefers.
    candidates = ["q4"] if model.embedded else _quantizations_to_try(tier, fmt)
    for index, quantization in enumerate(candidates):
        then = f"trying {candidates[index + 1]}" if index + 1 < len(candidates) else next_hint
        source = (
            model.sources.get("embedded")
            if model.embedded
            else source_for(model, fmt, quantization)
        )
        if source is None:
            steps.append(f"{model.id} has no {fmt} download at {quantization} → {then}")
            continue
        needed = estimate_mb(model, quantization, context)
        if needed <= free:
            return Choice(
                model=model,
                quantization=quantization,
                context_tokens=context,
                reason=(
                    f"{model.id} at {quantization} needs ~{needed} MB, "
                    f"{free} MB {where} (tier: {tier.name})"
                ),
                source=source,
                tier=tier,
            )
        steps.append(
            f"{model.id} needs ~{needed} MB at {quantization}, only {free} MB {where} → {then}"
        )
    return None


def choose(requested: str | None, hw: Hardware, budget_mb: int = 0, fmt: str = "gguf") -> Choice:
    """Walk the degradation ladder and return what to load (or templates).

    `requested` is the `model` setting: a catalog id or hub id; None, "" or "auto" means
    the embedded default. A name not in the catalog cannot be sized, so it is recorded as a
    step and the ladder continues from the embedded model; callers that accept local paths
    or unknown hub ids size those themselves before asking here.
    """
    tier = tier_for(hw, budget_mb)
    steps: list[str] = []
    name = (requested or "").strip()
    embedded = catalog.get(catalog.EMBEDDED_ID)
    ladder: list[CatalogModel] = []
    if name.lower() in AUTO:
        pass  # straight to the embedded default
    else:
        wanted = catalog.get(name)
        if wanted is None:
            steps.append(f"{name} is not in the catalog, its footprint is unknown → embedded model")
        else:
            ladder.append(wanted)
            ladder.extend(
                member
                for member in catalog.family_members(wanted.family)
                if member.params_b < wanted.params_b and not member.embedded
            )
    if embedded is not None and embedded not in ladder:
        ladder.append(embedded)

    for index, model in enumerate(ladder):
        following = ladder[index + 1] if index + 1 < len(ladder) else None
        if following is None:
            next_hint = "templates"
        elif following.embedded:
            next_hint = "embedded model"
        else:
            next_hint = f"trying smaller: {following.id}"
        chosen = _try_model(model, hw, budget_mb, fmt, tier, steps, next_hint)
        if chosen is not None:
            chosen.steps = steps
            if name.lower() in AUTO and model.embedded:
                chosen.reason = "no model configured: the embedded default; " + chosen.reason
            return chosen

    free = usable_memory_mb(hw, budget_mb)
    return Choice(
        model=None,
        quantization=None,
        context_tokens=tier.context_tokens,
        steps=steps,
        reason=f"no model fits in {free} MB {_where(hw, budget_mb)}: serving templates",
        tier=tier,
    )
