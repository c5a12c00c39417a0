"""The prefill budget: a prompt the backend has not cached is cut to the last lines
before the cursor (decided by the engine host's PrefixTracking, next to the KV cache), and
the full window is processed once the user pauses.

A recording backend stands in for the model (these are the engine's rules; the real
model's behaviour is in tests/e2e/test_inline.py and `companion bench latency`)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from companion.backends.base import BackendInfo, Capabilities, Chunk, GenerationRequest, ModelSpec
from companion.config import Settings
from companion.engine import completer
from companion.engine import debounce as debounce_module
from companion.engine.completer import Engine, EngineState, shared_prefix_length
from companion.host.prefix import PrefixTracking


class RecordingBackend:
    name = "recording"
    capabilities = Capabilities()

    def __init__(self, release: threading.Event | None = None) -> None:
        self.prompts: list[str] = []
        self.cached = ""
        self.release = release  # a generation waits for it: "the model is still busy"

    def load(self, model: ModelSpec) -> None: ...

    def unload(self) -> None: ...

    def info(self) -> BackendInfo:
        return BackendInfo("recording", "m", "cpu", 0.0, 2048)

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        self.prompts.append(request.prompt)
        if self.release is not None:
            assert self.release.wait(60), "the test never let the generation finish"
        shared = shared_prefix_length(request.prompt, self.cached)
        self.cached = request.prompt
        yield Chunk("x = 1", prompt_tokens=len(request.prompt) // 3,
                    cached_tokens=shared // 3, prefill_ms=1.0)
        yield Chunk("\n", finish_reason="stop")


def engine_with(backend: RecordingBackend) -> Engine:
    # No speculative suggestions here: these tests count the prompts the rules send
    # (speculation has its own, tests/unit/test_speculation.py).
    engine = Engine(Settings(context_tokens=1536, speculate=False))
    spec = ModelSpec(name="m", path="m.gguf", family="generic", context_tokens=1536)
    # The engine host wraps every local backend this way: it owns the prefill budget.
    engine.current = EngineState("ready", PrefixTracking(backend), spec, "test", [])
    return engine


async def until(check: Callable[[], bool], timeout: float = 30) -> None:
    """Wait for `check` to hold (the background work runs on the engine's thread)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


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
        await until(lambda: engine.metrics.counts["grows"] == 1)
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


async def test_automatic_requests_superseded_during_the_debounce_never_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The typing rhythm comes from a clock the test moves (a key every 50 ms), and the
    # first generation lasts until the test says so: no real durations decide anything.
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(debounce_module, "time", SimpleNamespace(monotonic=lambda: clock.now))
    busy = threading.Event()
    backend = RecordingBackend(release=busy)
    engine = engine_with(backend)
    engine.debounce.observe_latency(10.0)  # a slow engine: fast keys get debounced
    uri = "file:///d.py"
    text = "x = 1\n"
    try:
        tasks = []
        for typed in range(4):  # a key every 50 ms against a 10 s engine
            tasks.append(asyncio.ensure_future(
                engine.complete(text + "a" * typed, 1, typed, uri, automatic=True)))
            await asyncio.sleep(0)  # the request starts (and, but for the first, waits)
            clock.now += 0.05
        await until(lambda: len(backend.prompts) == 1)  # the first key is generating
        busy.set()
        results = await asyncio.gather(*tasks)
        # The two keys overtaken during their debounce never reached the model; the last
        # one did. (The first, already generating, either finished or was superseded.)
        assert [r.finish_reason == "cancelled" for r in results[1:]] == [True, True, False]
        assert results[-1].source == "model"
        assert len(backend.prompts) == 2  # the first key (no rhythm yet) and the last
        assert "aaa" in backend.prompts[-1]  # the last key's text
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
