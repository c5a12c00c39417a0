"""The backend contract: one small protocol every inference engine implements.

A backend loads one model, streams `Chunk`s for a `GenerationRequest`, and stops between
tokens when the request's cancel flag is set or its deadline passes. Prefix reuse (KV
cache of the longest common prompt prefix) is the backend's business.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol


class CancelFlag:
    """A cooperative cancel signal, checked by generation loops between tokens."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class GenerationRequest:
    """What to generate. `prompt` is always set; `prefix`/`suffix` let native-infill or
    template backends see the document around the cursor."""

    prompt: str
    max_tokens: int = 64
    stop: list[str] = field(default_factory=list)
    temperature: float = 0.0
    deadline: float | None = None  # time.monotonic() after which generation stops
    prefix: str = ""
    suffix: str = ""
    language: str = "python"
    # Chat form of the prompt ({"role", "content"} dicts) for backends with a chat API;
    # local engines ignore it and use `prompt`.
    messages: list[dict[str, str]] = field(default_factory=list)
    cancel: CancelFlag = field(default_factory=CancelFlag)

    def should_stop(self) -> bool:
        """True once cancelled or past the deadline."""
        if self.cancel.cancelled:
            return True
        return self.deadline is not None and time.monotonic() > self.deadline


@dataclass
class Chunk:
    """One piece of streamed output (the shape mlx-lm's generate yields)."""

    text: str
    tokens: int = 1
    finish_reason: str | None = None  # "stop" | "length" | "cancelled" | "deadline"
    prompt_tokens: int = 0  # set on the first chunk
    prefill_ms: float | None = None  # set on the first chunk
    cached_tokens: int = 0  # prompt tokens reused from the previous request


@dataclass(frozen=True)
class BackendInfo:
    """What `companion/status` shows about a backend."""

    name: str
    model: str
    device: str
    memory_mb: float
    context_tokens: int
    fim: bool = False


class BackendError(RuntimeError):
    """A backend could not load or generate; the message is shown to the user as is."""


class Backend(Protocol):
    """One inference engine with at most one loaded model."""

    name: str

    def load(self, model: ModelSpec) -> None: ...

    def unload(self) -> None: ...

    def info(self) -> BackendInfo: ...

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]: ...


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


def close_stream(stream: Iterator[Chunk]) -> None:
    """Stop a backend's generator now (its `finally` frees the engine), not at GC time."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def stop_reason(request: GenerationRequest) -> str:
    """Why a generation loop stopped early: "cancelled" or "deadline"."""
    return "cancelled" if request.cancel.cancelled else "deadline"
