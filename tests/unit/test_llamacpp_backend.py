"""The llama.cpp backend on the embedded model: prefix reuse and a prefill that stops
when cancelled (the real model, in process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from companion.backends.base import GenerationRequest
from companion.models.resolve import resolve

llama_cpp = pytest.importorskip("llama_cpp")

from companion.backends import llamacpp  # noqa: E402
from companion.backends.llamacpp import LlamaCppBackend  # noqa: E402

PROMPT = "".join(f"def helper_{i}(value):\n    return value * {i}\n\n\n" for i in range(120))


@pytest.fixture(scope="module")
def backend() -> Iterator[LlamaCppBackend]:
    loaded = LlamaCppBackend()
    loaded.load(resolve("", 4096))
    yield loaded
    loaded.unload()


def test_the_shared_prefix_is_reused(backend: LlamaCppBackend) -> None:
    first = next(iter(backend.stream(GenerationRequest(prompt=PROMPT[:2000], max_tokens=2))))
    again = next(iter(backend.stream(GenerationRequest(prompt=PROMPT[:2000] + "x = 1",
                                                       max_tokens=2))))
    assert first.prompt_tokens > 100
    assert again.cached_tokens >= first.prompt_tokens - 2


def test_a_cancelled_prefill_stops_early(backend: LlamaCppBackend,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in backend.stream(GenerationRequest(prompt="reset", max_tokens=1)):  # new prefix
        pass
    request = GenerationRequest(prompt=PROMPT, max_tokens=8)
    llm = backend._llm
    assert llm is not None
    evaluate = llm.eval
    chunks_evaluated: list[int] = []

    def eval_then_cancel(tokens: list[int]) -> None:
        """Evaluate one chunk; the cancel arrives while it runs (as a keystroke would)."""
        chunks_evaluated.append(len(tokens))
        evaluate(tokens)
        request.cancel.cancel()

    monkeypatch.setattr(llm, "eval", eval_then_cancel)
    chunks = list(backend.stream(request))
    assert chunks[-1].finish_reason == "cancelled"
    assert sum(chunk.tokens for chunk in chunks) == 0
    # It stopped after the chunk that was running: one of the ~2,800-token prompt's dozens.
    assert len(backend.tokenize(PROMPT)) > 10 * llamacpp.PREFILL_CHUNK
    assert chunks_evaluated == [llamacpp.PREFILL_CHUNK]
