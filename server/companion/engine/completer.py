"""The completion engine: context → prompt → generate → post-process, plus model state.

No pygls here: the LSP handlers call `Engine.complete` with plain values, so the whole
pipeline is testable without a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from companion.backends.base import (
    Backend,
    CancelFlag,
    GenerationRequest,
    ModelSpec,
    close_stream,
)
from companion.backends.registry import LoadResult, load_with_fallback
from companion.backends.templates import TemplatesBackend, template_completion
from companion.config import Settings
from companion.engine.context import STEP_LINES, CursorContext, build_context
from companion.engine.debounce import Debounce
from companion.engine.health import ModelHealth
from companion.engine.metrics import Metrics
from companion.engine.postprocess import PostContext, clean, is_finished, looping
from companion.engine.prompts import Prompt, build_prompt
from companion.engine.scheduler import ResultCache, Scheduler, Superseded
from companion.models.hardware import probe

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 3.2
# A generation that has not returned after this long is stuck (prefill of a full window on
# a slow laptop takes ~10 s; streaming stops itself at twice the inline deadline).
HANG_TIMEOUT_S = 60.0  # code in a BPE tokenizer; only used to size the text windows

# A request pays for at most this many prompt tokens the engine has not processed yet
# (~0.5 s on two cores with the embedded model). When the full window is not cached —
# a newly opened file, a jump, the window moving down — the prompt is cut to the last
# lines before the cursor (moving in SMALL_STEP_LINES steps), and the full window is
# processed in the background once the user pauses for GROW_AFTER_S.
PREFILL_BUDGET_TOKENS = 160
SMALL_STEP_LINES = 4
GROW_AFTER_S = 0.4
# Automatic (as-you-type) requests stop at the first line end past this budget; an
# explicit invocation gets the whole `inlineDeadlineMs`.
TYPING_BUDGET_MS = 300
# Backends on another machine: their prefix cache is the server's business, and a team
# server is not sent warm-ups or background prefills.
REMOTE_BACKENDS = frozenset({"openai"})


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


@dataclass(frozen=True)
class Suggestion:
    """Ghost text for one cursor position and where it came from."""

    text: str
    source: str  # "model" | "cache" | "templates"
    latency_ms: float
    tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    finish_reason: str = ""
    context_ms: float = 0.0  # cursor context and prompt building
    narrowed: bool = False  # the prompt was cut to fit the prefill budget
    prefill_ms: float = 0.0  # prompt processing in the engine (0 when fully cached)
    decode_ms: float = 0.0  # token generation after the prefill


@dataclass
class EngineState:
    """What is loaded and why; replaced whole when the model changes."""

    state: str  # "loading" | "ready" | "degraded" | "templates"
    backend: Backend
    spec: ModelSpec | None
    reason: str
    steps: list[str]
    load_seconds: float = 0.0
    hardware: dict[str, Any] | None = None  # the probe the choice was made from


class Engine:
    """Owns the loaded backend, the scheduler, the cache and the metrics."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.metrics = Metrics()
        self.scheduler = Scheduler()
        self.cache = ResultCache()
        self._templates = TemplatesBackend()
        self.current = EngineState("loading", self._templates, None, "starting", [])
        self._loaded: Backend | None = None  # the backend holding a model, to unload
        self.health = ModelHealth()
        self.hang_timeout_s = float(os.environ.get("COMPANION_HANG_TIMEOUT_S", HANG_TIMEOUT_S))
        self._load_lock = threading.Lock()
        self.debounce = Debounce()
        # The prompt whose KV cache the backend holds (worker thread only): how much of a
        # new prompt is already processed is estimated from it.
        self._kv_prompt = ""
        self._newest: dict[str, object] = {}  # newest request per document (debounce)
        self._grow_timers: dict[str, asyncio.TimerHandle] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- model state -------------------------------------------------------------------

    def load(self, on_step: Callable[[str], Any] | None = None) -> EngineState:
        """Load the configured backend and model (blocking; call it off the event loop)."""
        with self._load_lock:
            started = time.perf_counter()
            self.current = EngineState("loading", self._templates, None, "loading", [])
            if self._loaded is not None:
                self._loaded.unload()
                self._loaded = None
            hardware = probe()  # once per load: status shows this, it does not re-probe
            result: LoadResult = load_with_fallback(self.settings, on_step, hardware)
            self._loaded = result.backend if result.spec is not None else None
            if result.spec is None:
                state = "templates"
            else:
                state = "degraded" if result.degraded else "ready"
            self.current = EngineState(
                state,
                result.backend,
                result.spec,
                result.reason,
                result.steps,
                time.perf_counter() - started,
                hardware.to_dict(),
            )
            self.cache.clear()
            self._kv_prompt = ""
            log.info(
                "model ready: backend=%s model=%s state=%s in %.1fs (%s)",
                result.backend.name,
                result.spec.name if result.spec else "-",
                state,
                self.current.load_seconds,
                result.reason,
            )
            return self.current

    async def reload(self, on_step: Callable[[str], Any] | None = None) -> EngineState:
        """Load on the generation thread, after any generation in flight; requests that
        arrive meanwhile are answered from templates. A hung worker is replaced."""
        self.current = EngineState("loading", self._templates, None, "loading", [])
        self.scheduler.cancel_all()
        if self.health.hung:
            self.scheduler.shutdown()
            self.scheduler = Scheduler()
            self._loaded = None  # owned by the stuck thread: never touched again
        self.health = ModelHealth()
        return await self.scheduler.run_exclusive(lambda: self.load(on_step))

    def shutdown(self) -> None:
        """Stop generating and free the model — on the generation thread, after the
        generation in flight stops (freeing it under a running generation would crash
        the engine). A hung worker keeps its model: the process is about to exit."""
        self.scheduler.cancel_all()
        for uri in list(self._grow_timers):
            self._cancel_grow(uri)
        loaded, self._loaded = self._loaded, None
        if loaded is not None and not self.health.hung:
            with contextlib.suppress(Exception):
                self.scheduler.submit(loaded.unload).result(timeout=10)
        self.scheduler.shutdown()

    # -- completions -------------------------------------------------------------------

    def context_at(
        self,
        text: str,
        line: int,
        character: int,
        language: str = "python",
        path: str = "",
        encoding: str = "utf-16",
        prefix_tokens: int | None = None,
        step_lines: int = STEP_LINES,
    ) -> CursorContext:
        """The cursor context, sized from the model's context budget (or, for the prefix,
        from `prefix_tokens`)."""
        budget = self.settings.context_tokens
        if self.current.spec is not None:
            budget = min(budget, self.current.spec.context_tokens)
        budget_chars = int((budget - self.settings.max_tokens) * CHARS_PER_TOKEN)
        prefix_chars = max(256, int(budget_chars * 0.8))
        if prefix_tokens is not None:
            prefix_chars = min(prefix_chars, int(prefix_tokens * CHARS_PER_TOKEN))
        return build_context(
            text,
            line,
            character,
            prefix_chars=prefix_chars,
            suffix_chars=max(128, int(budget_chars * 0.2)),
            language=language,
            path=path,
            encoding=encoding,
            step_lines=step_lines,
        )

    def _template_suggestion(self, ctx: CursorContext, started: float) -> Suggestion:
        text = template_completion(ctx.prefix, ctx.suffix)
        post = PostContext(ctx)
        text = clean(text, post).text if text else ""
        return Suggestion(text, "templates", (time.perf_counter() - started) * 1000)

    async def complete(
        self,
        text: str,
        line: int,
        character: int,
        uri: str,
        language: str = "python",
        path: str = "",
        flag: CancelFlag | None = None,
        encoding: str = "utf-16",
        automatic: bool = False,
    ) -> Suggestion:
        """Ghost text at (line, character); raises PositionError for a bad position.

        `automatic`: the editor asked on its own (typing), not the user explicitly."""
        started = time.perf_counter()
        ctx = self.context_at(text, line, character, language, path, encoding)
        cached = self.cache.get(uri, ctx.prefix, ctx.suffix)
        if cached is not None:
            self.metrics.count("cacheHits")
            return Suggestion(cached, "cache", (time.perf_counter() - started) * 1000)
        if self.current.spec is None or not self.health.may_try():
            return self._template_suggestion(ctx, started)
        self._cancel_grow(uri)
        overtaken = uri in self._newest  # the previous request is still unanswered
        marker = self._newest[uri] = object()
        try:
            if automatic:
                wait = self.debounce.delay(uri, overtaken=overtaken)
                if wait:
                    await asyncio.sleep(wait)
                    if self._newest.get(uri) is not marker:  # a newer keystroke came
                        self.metrics.count("debounced")
                        return Suggestion("", "cancelled", (time.perf_counter() - started)
                                          * 1000, finish_reason="cancelled")
            suggestion = await self._run_generation(
                uri, ctx, started, flag or CancelFlag(), automatic,
                lambda: self.context_at(text, line, character, language, path, encoding,
                                        PREFILL_BUDGET_TOKENS, SMALL_STEP_LINES),
            )
        finally:
            if self._newest.get(uri) is marker:
                del self._newest[uri]
        if suggestion.narrowed and self._newest.get(uri) is None:
            self._schedule_grow(uri, ctx)
        return suggestion

    async def _run_generation(
        self,
        uri: str,
        ctx: CursorContext,
        started: float,
        flag: CancelFlag,
        automatic: bool,
        narrow: Callable[[], CursorContext],
    ) -> Suggestion:
        """The model's suggestion on the generation thread, with templates answering
        for a failing or hung model."""
        try:
            suggestion = await asyncio.wait_for(
                self.scheduler.run(
                    uri, lambda f: self._generate(ctx, f, started, automatic, narrow), flag
                ),
                timeout=self.hang_timeout_s,
            )
        except Superseded:
            return Suggestion("", "cancelled", (time.perf_counter() - started) * 1000,
                              finish_reason="cancelled")
        except TimeoutError:
            flag.cancel()
            self._hung(f"a generation ran past {self.hang_timeout_s:.0f} s")
            return self._template_suggestion(ctx, started)
        except Exception as error:
            # A failing model must not cost the user their suggestion: templates answer.
            self._failed(error)
            return self._template_suggestion(ctx, started)
        if self.health.failures:
            log.info("model healthy again after %d failure(s)", self.health.failures)
            self.health.succeeded()
        if suggestion.finish_reason != "cancelled":
            self.cache.put(uri, ctx.prefix, ctx.suffix, suggestion.text)
            if suggestion.source == "model":
                self.debounce.observe_latency(suggestion.latency_ms / 1000)
        return suggestion

    # -- prefill budget: the full window in the background ----------------------------

    def _uncached_tokens(self, prompt: str) -> float:
        """About how many tokens of `prompt` the backend's KV cache does not hold."""
        shared = shared_prefix_length(prompt, self._kv_prompt)
        return (len(prompt) - shared) / CHARS_PER_TOKEN

    def _started_prompt(self, prompt: str, completed: bool) -> None:
        """Record what the KV cache holds after a generation on `prompt` (worker thread):
        all of it once the prefill completed, else only what it shared with before."""
        if completed:
            self._kv_prompt = prompt
        else:
            self._kv_prompt = prompt[: shared_prefix_length(prompt, self._kv_prompt)]

    def _cancel_grow(self, uri: str) -> None:
        timer = self._grow_timers.pop(uri, None)
        if timer is not None:
            timer.cancel()

    def _schedule_grow(self, uri: str, ctx: CursorContext) -> None:
        """After a pause, process the full window at the cursor, so the next request
        there gets the whole context at the price of a short prefill."""
        self._cancel_grow(uri)

        def start() -> None:
            self._grow_timers.pop(uri, None)
            task = asyncio.ensure_future(self._prefill(uri, ctx, "grows"))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        self._grow_timers[uri] = asyncio.get_running_loop().call_later(GROW_AFTER_S, start)

    async def _prefill(self, uri: str, ctx: CursorContext, counter: str) -> None:
        """Process the prompt for `ctx` on the generation thread without keeping any
        output; it runs under the document's key, so the next real request cancels it."""

        def job(flag: CancelFlag) -> None:
            current = self.current
            if current.spec is None or current.backend.name in REMOTE_BACKENDS:
                return
            prompt = build_prompt(ctx, current.spec.family, current.spec.fim)
            request = GenerationRequest(prompt=prompt.text, max_tokens=1, cancel=flag)
            completed = False
            stream = current.backend.stream(request)
            try:
                for chunk in stream:
                    completed = chunk.prefill_ms is not None
                    break
            finally:
                close_stream(stream)
                self._started_prompt(prompt.text, completed)
            if completed:
                self.metrics.count(counter)

        try:
            await self.scheduler.run(uri, job, CancelFlag())
        except Exception as error:  # background work never matters enough to report loudly
            log.debug("background prefill of %s skipped: %s", uri, error)

    def _failed(self, error: BaseException) -> None:
        self.metrics.count("modelErrors")
        backoff = self.health.failed(f"{error.__class__.__name__}: {error}")
        log.error("generation failed (%s: %s); templates answer, next try in %.0f s",
                  error.__class__.__name__, error, backoff)

    def _hung(self, reason: str) -> None:
        """The worker thread is stuck in the engine: serve templates until a restart,
        which starts a fresh worker (the stuck thread is abandoned)."""
        self.metrics.count("modelHangs")
        self.health.mark_hung(reason)
        log.error("model hung (%s): serving templates until companion/restart", reason)

    def _generate(
        self,
        ctx: CursorContext,
        flag: CancelFlag,
        started: float,
        automatic: bool = False,
        narrow: Callable[[], CursorContext] | None = None,
    ) -> Suggestion:
        """Run one generation on the worker thread, stopping as soon as it is complete.

        Reads `self.current` here, on the worker: model loads run on the same thread, so
        the backend cannot be swapped out from under a generation. When the prompt would
        cost more than PREFILL_BUDGET_TOKENS of prefill, `narrow()` gives a smaller one.
        """
        current = self.current
        if current.spec is None:
            return self._template_suggestion(ctx, started)
        prompt = build_prompt(ctx, current.spec.family, current.spec.fim)
        narrowed = False
        if (narrow is not None and current.backend.name not in REMOTE_BACKENDS
                and self._uncached_tokens(prompt.text) > PREFILL_BUDGET_TOKENS):
            small = narrow()
            if len(small.prefix) < len(ctx.prefix):
                ctx, narrowed = small, True
                prompt = build_prompt(ctx, current.spec.family, current.spec.fim)
        post = PostContext(ctx)
        context_ms = (time.perf_counter() - started) * 1000
        budget_ms = self.settings.inline_deadline_ms
        if automatic:
            budget_ms = min(budget_ms, TYPING_BUDGET_MS)
        soft_deadline = started + budget_ms / 1000
        hard_budget = started + (2 * budget_ms if automatic else 4 * budget_ms) / 1000
        request = GenerationRequest(
            prompt=prompt.text,
            max_tokens=self.settings.max_tokens,
            stop=list(prompt.stop),
            deadline=time.monotonic() + 2 * self.settings.inline_deadline_ms / 1000,
            prefix=ctx.prefix,
            suffix=ctx.suffix,
            language=ctx.language,
            cancel=flag,
        )
        raw = output = ""
        tokens = prompt_tokens = cached_tokens = 0
        finish = ""
        prefill_ms = 0.0
        generation_started = time.perf_counter()
        stream = current.backend.stream(request)
        prefilled = False
        try:
            for chunk in stream:
                output += chunk.text
                raw = prompt.healed(output)
                tokens += chunk.tokens
                if chunk.prefill_ms is not None:
                    prompt_tokens, cached_tokens = chunk.prompt_tokens, chunk.cached_tokens
                    prefill_ms = chunk.prefill_ms
                    prefilled = True
                if chunk.finish_reason:
                    finish = chunk.finish_reason
                    break
                stop_at = min((raw.find(s) for s in prompt.stop if s in raw), default=-1)
                if stop_at >= 0:
                    raw, finish = raw[:stop_at], "stop"
                    break
                if looping(raw[-96:]):  # the filters cut the loop; no need to finish it
                    finish = "loop"
                    break
                if time.perf_counter() > hard_budget and clean(raw, post).text:
                    finish = "deadline"  # as-you-type: no line end in sight, show what is there
                    break
                if "\n" in chunk.text:
                    if is_finished(raw, post):
                        finish = "complete"
                        break
                    # Over budget: return what is there at this line end, if anything.
                    if time.perf_counter() > soft_deadline and clean(raw, post).text:
                        finish = "deadline"
                        break
        finally:
            close_stream(stream)
            self._started_prompt(request.prompt, prefilled)
        generation_ms = (time.perf_counter() - generation_started) * 1000
        self.metrics.generation(tokens, generation_ms / 1000)
        if flag.cancelled:
            finish = "cancelled"
        cleaned = clean(raw, post)
        return Suggestion(
            cleaned.text,
            "model",
            (time.perf_counter() - started) * 1000,
            tokens,
            prompt_tokens,
            cached_tokens,
            finish,
            context_ms=context_ms,
            prefill_ms=prefill_ms,
            decode_ms=max(0.0, generation_ms - prefill_ms),
            narrowed=narrowed,
        )

    # -- warm-up -----------------------------------------------------------------------------

    async def warm(self, uri: str, text: str, language: str = "python", path: str = "") -> None:
        """Prefill the prompt for the top window of a newly opened file in the background,
        so that the first suggestion in it reuses that prefix instead of paying for it.

        It runs under the document's key: the first real request cancels what is left."""
        if self.current.spec is None or not text.strip():
            return
        budget = int((self.settings.context_tokens - self.settings.max_tokens)
                     * CHARS_PER_TOKEN * 0.8)
        head = text[:budget]
        head = head[: head.rfind("\n") + 1] if "\n" in head else head
        lines = head.split("\n")
        ctx = self.context_at(head, len(lines) - 1, 0, language, path)
        await self._prefill(uri, ctx, "warmups")

    # -- free text (hover explanations, explain command) ------------------------------------

    async def generate_text(
        self, key: str, prompt: Prompt, max_tokens: int, timeout_s: float
    ) -> str | None:
        """The model's answer to `prompt` (None with no model loaded), on the generation
        thread; `key` groups requests that supersede each other."""
        if self.current.spec is None:
            return None

        def job(flag: CancelFlag) -> str | None:
            current = self.current
            if current.spec is None:
                return None
            request = GenerationRequest(
                prompt=prompt.text,
                max_tokens=max_tokens,
                stop=list(prompt.stop),
                deadline=time.monotonic() + timeout_s,
                messages=[{"role": role, "content": text} for role, text in prompt.messages],
                cancel=flag,
            )
            output = ""
            prefilled = False
            stream = current.backend.stream(request)
            try:
                for chunk in stream:
                    prefilled = prefilled or chunk.prefill_ms is not None
                    output += chunk.text
                    hits = [output.find(s) for s in prompt.stop if s in output]
                    if hits:
                        output = output[: min(hits)]
                        break
                    if chunk.finish_reason:
                        break
            finally:
                close_stream(stream)
                self._started_prompt(request.prompt, prefilled)
            return output.strip()

        return await self.scheduler.run(key, job, CancelFlag())

    # -- status ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The `companion/status` payload (never includes secrets)."""
        import psutil

        current = self.current
        info = current.backend.info()
        snapshot = self.metrics.snapshot()
        inline = snapshot["latency"].get("inline", {})
        rss = psutil.Process(os.getpid()).memory_info().rss / 2**20
        return {
            "backend": info.name,
            "model": info.model,
            "device": info.device,
            "state": "degraded" if self.health.degraded and current.spec else current.state,
            "health": self.health.to_dict(),
            "inFlight": self.scheduler.in_flight,
            "reason": current.reason,
            "steps": list(current.steps),
            "loadSeconds": round(current.load_seconds, 2),
            "memoryMB": round(rss, 1),
            "hardware": current.hardware,
            "modelMemoryMB": info.memory_mb,
            "contextTokens": info.context_tokens,
            "requests": snapshot["requests"],
            "latency": {
                "p50Ms": inline.get("p50Ms"),
                "p95Ms": inline.get("p95Ms"),
                "lastMs": inline.get("lastMs"),
            },
            "latencyByKind": snapshot["latency"],
            "generatedTokens": snapshot["generatedTokens"],
            "tokensPerSecond": snapshot["tokensPerSecond"],
            "shown": snapshot["requests"].get("shown", 0),
            "accepted": snapshot["requests"].get("accepted", 0),
        }
