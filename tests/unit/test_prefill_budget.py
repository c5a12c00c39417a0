"""The prefill budget: a prompt the backend has not cached is cut to the last lines
before the cursor (decided by the engine host's PrefixTracking, next to the KV cache), and
the full window is processed once the user pauses.

A recording backend stands in for the model (these are the engine's rules; the real
model's behaviour is in tests/e2e/test_inline.py and `companion bench latency`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from companion.backends.base import BackendInfo, Capabilities, Chunk, GenerationRequest, ModelSpec
from companion.config import Settings
from companion.engine import completer
from companion.engine.completer import Engine, EngineState, shared_prefix_length
from companion.host.prefix import PrefixTracking


class RecordingBackend:
    name = "recording"
    capabilities = Capabilities()

    def __init__(self, seconds: float = 0.0) -> None:
        self.prompts: list[str] = []
        self.cached = ""
        self.seconds = seconds

    def load(self, model: ModelSpec) -> None: ...

    def unload(self) -> None: ...

    def info(self) -> BackendInfo:
        return BackendInfo("recording", "m", "cpu", 0.0, 2048)

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        self.prompts.append(request.prompt)
        time.sleep(self.seconds)
        shared = shared_prefix_length(request.prompt, self.cached)
        self.cached = request.prompt
        yield Chunk("x = 1", prompt_tokens=len(request.prompt) // 3,
                    cached_tokens=shared // 3, prefill_ms=1.0)
        yield Chunk("\n", finish_reason="stop")


def engine_with(backend: RecordingBackend) -> Engine:
    engine = Engine(Settings(context_tokens=1536))
    spec = ModelSpec(name="m", path="m.gguf", family="generic", context_tokens=1536)
    # The engine host wraps every local backend this way: it owns the prefill budget.
    engine.current = EngineState("ready", PrefixTracking(backend), spec, "test", [])
    return engine


DOCUMENT = "".join(f"value_{n} = compute({n}, 'some padding text')\n" for n in range(300))


def test_shared_prefix_length() -> None:
    assert shared_prefix_length("abcdef", "abcxyz") == 3
    assert shared_prefix_length("", "abc") == 0
    assert shared_prefix_length("abc", "abc") == 3
    assert shared_prefix_length("abc", "abcd") == 3


async def test_uncached_window_is_narrowed_then_grown_after_a_pause() -> None:
    backend = RecordingBackend()
    engine = engine_with(backend)
    uri = "file:///a.py"
    line = 250
    try:
        first = await engine.complete(DOCUMENT, line, 0, uri)
        assert first.narrowed
        budget_chars = completer.PREFILL_BUDGET_TOKENS * completer.CHARS_PER_TOKEN
        assert len(backend.prompts[0]) <= budget_chars
        # Typing on: the narrow window is cached now, so it stays narrow and cheap.
        typed = DOCUMENT.replace(f"value_{line} = ", f"value_{line} = x", 1)
        assert (await engine.complete(typed, line, 0, uri)).narrowed
        # A pause: the full window is processed in the background...
        await asyncio.sleep(completer.GROW_AFTER_S + 0.3)
        assert engine.metrics.counts["grows"] == 1
        grown = backend.prompts[-1]
        assert len(grown) > 3 * budget_chars
        # ...and the next request gets the full context.
        again = await engine.complete(DOCUMENT[:-1] + " ", line, 1, uri)
        assert not again.narrowed
        assert len(backend.prompts[-1]) > 3 * budget_chars
    finally:
        engine.shutdown()


async def test_a_request_during_the_pause_cancels_the_grow() -> None:
    backend = RecordingBackend()
    engine = engine_with(backend)
    uri = "file:///b.py"
    try:
        await engine.complete(DOCUMENT, 250, 0, uri)
        await asyncio.sleep(completer.GROW_AFTER_S / 4)
        await engine.complete(DOCUMENT, 250, 3, uri)
        await asyncio.sleep(completer.GROW_AFTER_S / 2)
        assert engine.metrics.counts["grows"] == 0
    finally:
        engine.shutdown()


async def test_a_cached_window_is_used_whole() -> None:
    backend = RecordingBackend()
    engine = engine_with(backend)
    small = "".join(f"v{n} = {n}\n" for n in range(20))
    try:
        suggestion = await engine.complete(small, 20, 0, "file:///c.py")
        assert not suggestion.narrowed  # the whole file fits in the budget
    finally:
        engine.shutdown()


async def test_automatic_requests_superseded_during_the_debounce_never_run() -> None:
    backend = RecordingBackend(seconds=0.12)
    engine = engine_with(backend)
    engine.debounce.observe_latency(10.0)  # a slow engine: fast keys get debounced
    uri = "file:///d.py"
    text = "x = 1\n"
    try:
        tasks = []
        for typed in range(4):  # a key every 50 ms against a 10 s engine
            tasks.append(asyncio.ensure_future(
                engine.complete(text + "a" * typed, 1, typed, uri, automatic=True)))
            await asyncio.sleep(0.05)
        results = await asyncio.gather(*tasks)
        assert [r.finish_reason == "cancelled" for r in results] == [False, True, True, False]
        assert results[-1].source == "model"
        assert len(backend.prompts) == 2  # the first key (no rhythm yet) and the last
        assert engine.metrics.counts["debounced"] == 2
    finally:
        engine.shutdown()


async def test_answers_that_come_before_the_next_key_are_never_debounced() -> None:
    backend = RecordingBackend()
    engine = engine_with(backend)
    engine.debounce.observe_latency(10.0)
    try:
        for typed in range(5):
            result = await engine.complete("x = 1\n" + "a" * typed, 1, typed, "file:///e.py",
                                           automatic=True)
            assert result.source == "model"
        assert engine.metrics.counts["debounced"] == 0
        assert len(backend.prompts) == 5
    finally:
        engine.shutdown()
