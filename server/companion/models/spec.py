"""The two types both models/ (resolution) and backends/ (loading) speak: a resolved model
and the error a backend or resolution reports. They live here so that backends/ may import
models/ and never the other way round."""

from __future__ import annotations

from dataclasses import dataclass


class BackendError(RuntimeError):
    """A backend could not load or generate; the message is shown to the user as is."""


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: where its weights are and how to prompt it."""

    name: str  # what status shows
    path: str  # a GGUF file, a model directory, or a hub id
    family: str  # keys the prompt template (engine.prompts)
    fim: bool = False
    instruct: bool = False
    context_tokens: int = 2048
    threads: int = 0
    # The engine's conservative configuration (llama.cpp: no extra buffer types, so no
    # AMX/repacked weights): used after a crash at load or in the self-test.
    safe_mode: bool = False
