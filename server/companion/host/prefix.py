"""The prefill budget, decided next to the KV cache it is about.

A backend with a local prefix cache keeps the KV state of the prompt it ran last. How much
of a new prompt that state already covers is estimated from the text of that prompt (the
engine host is the only one who knows it). A request over its prefill budget runs its
`narrow_prompt` instead, so a keystroke after a jump pays for a few lines of prefill, not
for a whole window; the first chunk says so (`Chunk.narrowed`).
"""

from __future__ import annotations

from collections.abc import Iterator

from companion.backends.base import (
    Backend,
    BackendError,
    BackendInfo,
    Capabilities,
    Chunk,
    ContinuationScore,
    GenerationRequest,
    ModelSpec,
    ScoreRequest,
    close_stream,
)

CHARS_PER_TOKEN = 3.2  # code in a BPE tokenizer; only used for estimates


def shared_prefix_length(a: str, b: str) -> int:
    """The length of the longest common prefix of two strings (binary search: the
    comparisons run in C)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


class PrefixTracking:
    """Wraps a backend: applies the prefill budget and remembers what its cache holds."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities: Capabilities = inner.capabilities
        self.cached_prompt = ""  # the prompt whose KV state the engine holds

    def load(self, model: ModelSpec) -> None:
        self.cached_prompt = ""
        self.inner.load(model)

    def unload(self) -> None:
        self.cached_prompt = ""
        self.inner.unload()

    def info(self) -> BackendInfo:
        return self.inner.info()

    def uncached_tokens(self, prompt: str) -> float:
        """About how many tokens of `prompt` the KV cache does not hold."""
        return (len(prompt) - shared_prefix_length(prompt, self.cached_prompt)) / CHARS_PER_TOKEN

    def choose(self, request: GenerationRequest) -> tuple[GenerationRequest, bool]:
        """The request to run: `narrow_prompt` when the full prompt is over budget."""
        if (request.narrow_prompt and request.prefill_budget_tokens > 0
                and self.capabilities.local_prefix_cache
                and len(request.narrow_prompt) < len(request.prompt)
                and self.uncached_tokens(request.prompt) > request.prefill_budget_tokens):
            request.prompt, request.narrow_prompt = request.narrow_prompt, ""
            return request, True
        return request, False

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        request, narrowed = self.choose(request)
        prefilled = False
        stream = self.inner.stream(request)
        try:
            for chunk in stream:
                if chunk.prefill_ms is not None and not prefilled:
                    prefilled = True
                    chunk.narrowed = narrowed
                yield chunk
        finally:
            close_stream(stream)
            self._record(request.prompt, prefilled)

    def score(self, request: ScoreRequest) -> list[ContinuationScore]:
        """The inner backend's scores (its prefill of the prompt is the cache's too)."""
        score = getattr(self.inner, "score", None)
        if score is None or not self.capabilities.rerank:
            raise BackendError(f"{self.name} cannot score continuations")
        scores: list[ContinuationScore] = score(request)
        self._record(request.prompt, bool(scores))
        return scores

    def _record(self, prompt: str, completed: bool) -> None:
        """What the KV cache holds after a generation on `prompt`: all of it once the
        prefill completed, else only what it shared with the previous one."""
        if completed:
            self.cached_prompt = prompt
        else:
            self.cached_prompt = prompt[: shared_prefix_length(prompt, self.cached_prompt)]
