"""The completion pipeline: context → prompt → generate → post-process.

No pygls here: the LSP handlers call `Engine.complete` with plain values, so the whole
pipeline is testable without a client. Which model serves, in which engine host process,
and what happens when it crashes is the Supervisor's (engine/supervisor.py); every pass
over a backend's stream goes through `consume`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from companion.backends.base import CancelFlag, Chunk, GenerationRequest
from companion.config import Settings
from companion.engine.background import GROW_AFTER_S, SMALL_STEP_LINES, Background
from companion.engine.context import STEP_LINES, CursorContext, build_context
from companion.engine.debounce import Debounce
from companion.engine.generation import PREFILL_BUDGET_TOKENS, generate_inline
from companion.engine.health import ModelHealth
from companion.engine.host_client import HostDied
from companion.engine.metrics import Metrics
from companion.engine.postprocess import PostContext, clean
from companion.engine.prompts import Prompt
from companion.engine.repo_context import (
    INVOKED_WAIT_S,
    REPO_CONTEXT_CHARS,
    TYPING_WAIT_S,
    RepoContext,
)
from companion.engine.scheduler import ResultCache, Scheduler, Superseded
from companion.engine.stream import StreamResult, Suggestion, consume
from companion.engine.supervisor import EngineState, Supervisor
from companion.engine.templates import template_completion
from companion.host.prefix import CHARS_PER_TOKEN, shared_prefix_length

__all__ = [
    "GROW_AFTER_S",
    "PREFILL_BUDGET_TOKENS",
    "SMALL_STEP_LINES",
    "Engine",
    "EngineState",
    "StreamResult",
    "Suggestion",
    "consume",
    "shared_prefix_length",
]

log = logging.getLogger(__name__)

# A last resort for a generation that never returns (prefill of a full window on a slow
# laptop takes ~10 s; streaming stops itself at twice the inline deadline).
HANG_TIMEOUT_S = 60.0



def latency_split(suggestion: Suggestion) -> dict[str, float]:
    """A model suggestion's latency in parts; `other` is what none of them covers (the
    pipe, the stream's hand-offs, the stop rule)."""
    parts = {"context": suggestion.context_ms, "queue": suggestion.queue_ms,
             "prefill": suggestion.prefill_ms, "decode": suggestion.decode_ms,
             "post": suggestion.post_ms, "rerank": suggestion.rerank_ms}
    parts["other"] = max(0.0, suggestion.latency_ms - sum(parts.values()))
    parts["total"] = suggestion.latency_ms
    return parts


class Engine:
    """The completion pipeline; the model's state lives in its Supervisor."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.metrics = Metrics()
        self.scheduler = Scheduler()
        self.cache = ResultCache()
        self.supervisor = Supervisor(lambda: self.settings, self._on_worker)
        # A last resort for engines without a watchdog of their own (the remote one):
        # the host's hangs are caught by its own watchdog long before this.
        self.hang_timeout_s = float(os.environ.get("COMPANION_HANG_TIMEOUT_S", HANG_TIMEOUT_S))
        self.debounce = Debounce()
        self.repo = RepoContext()
        self._newest: dict[str, object] = {}  # newest request per document (debounce)
        self.background = Background(self)

    @property
    def current(self) -> EngineState:
        return self.supervisor.current

    @current.setter
    def current(self, state: EngineState) -> None:
        self.supervisor.current = state

    @property
    def health(self) -> ModelHealth:
        return self.supervisor.health

    def _on_worker(self, job: Callable[[], Any]) -> Any:
        return self.scheduler.submit(job)

    # -- model state -------------------------------------------------------------------

    def load(self, on_step: Callable[[str], Any] | None = None) -> EngineState:
        """Load the configured backend and model (blocking; call it off the event loop)."""
        state = self.supervisor.load(on_step)
        self.cache.clear()
        return state

    async def reload(self, on_step: Callable[[str], Any] | None = None,
                     reset: bool = False) -> EngineState:
        """Load on the generation thread, after any generation in flight; requests that
        arrive meanwhile are answered from templates. `reset`: companion/restart, which
        forgets this session's crashes and goes back up the ladder."""
        self.current = EngineState("loading", self.supervisor.templates, None, "loading", [])
        self.scheduler.cancel_all()
        if reset:
            self.supervisor.reset_ladder()
        if self.health.hung:  # a remote engine's stuck thread: never touched again
            self.scheduler.shutdown()
            self.scheduler = Scheduler()
        return await self.scheduler.run_exclusive(lambda: self.load(on_step))

    def shutdown(self) -> None:
        """Stop generating, end the engine host (which frees the model) and the worker."""
        self.scheduler.cancel_all()
        self.background.shutdown()
        self.supervisor.shutdown()
        self.scheduler.shutdown()
        self.repo.shutdown()

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
        reserve_chars: int = 0,
    ) -> CursorContext:
        """The cursor context, sized from the model's context budget (or, for the prefix,
        from `prefix_tokens`); `reserve_chars` of the prefix's share go to the
        repository header."""
        budget = self.settings.context_tokens
        if self.current.spec is not None:
            budget = min(budget, self.current.spec.context_tokens)
        budget_chars = int((budget - self.settings.max_tokens) * CHARS_PER_TOKEN)
        prefix_chars = max(256, int(budget_chars * 0.8) - reserve_chars)
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
        documents: Mapping[str, str] | None = None,
    ) -> Suggestion:
        """Ghost text at (line, character); raises PositionError for a bad position.

        `automatic`: the editor asked on its own (typing), not the user explicitly.
        `documents`: the other open documents (path → text), for the repository context."""
        started = time.perf_counter()
        with_repo = self.settings.repo_context and documents is not None
        reserve = REPO_CONTEXT_CHARS if with_repo else 0
        ctx = self.context_at(text, line, character, language, path, encoding,
                              reserve_chars=reserve)
        cached = self.cache.get(uri, ctx.prefix, ctx.suffix)
        if cached is not None:
            self.metrics.count("cacheHits")
            suggestion = Suggestion(cached, "cache", (time.perf_counter() - started) * 1000)
            self.background.speculate(uri, text, ctx, suggestion, encoding, reserve)
            return suggestion
        if not self.current.serving or not self.health.may_try():
            return self._template_suggestion(ctx, started)
        self.background.cancel_grow(uri)
        self.background.preempt()  # any document's background work gives way
        overtaken = uri in self._newest  # the previous request is still unanswered
        marker = self._newest[uri] = object()
        waited = 0.0
        paused = False
        try:
            if automatic:
                paused = self.settings.rerank and self.debounce.paused(uri, text)
                wait = self.debounce.delay(uri, overtaken=overtaken)
                if wait:
                    slept = time.perf_counter()
                    await asyncio.sleep(wait)
                    waited = time.perf_counter() - slept
                    if self._newest.get(uri) is not marker:  # a newer keystroke came
                        self.metrics.count("debounced")
                        return Suggestion("", "cancelled", (time.perf_counter() - started)
                                          * 1000, finish_reason="cancelled")
            narrow = self.background.narrow_context(text, line, character, ctx, encoding)
            context_s = time.perf_counter() - started - waited
            header, complete = "", True
            if with_repo and documents is not None:
                # Off the event loop: jedi is waited on for at most its cap.
                asked = time.perf_counter()
                header, complete = await asyncio.to_thread(
                    self.repo.header, uri, text, ctx, documents,
                    TYPING_WAIT_S if automatic else INVOKED_WAIT_S, not automatic)
                context_s += time.perf_counter() - asked
            suggestion = await self._run_generation(
                uri, ctx, narrow, started, flag or CancelFlag(), automatic, header,
                context_s * 1000, paused, text)
        finally:
            if self._newest.get(uri) is marker:
                del self._newest[uri]
        if (suggestion.narrowed or not complete) and self._newest.get(uri) is None:
            refresh = None
            if with_repo and documents is not None and not complete:
                docs = documents

                def refresh() -> str:
                    return self.repo.header(uri, text, ctx, docs, INVOKED_WAIT_S, True)[0]
            self.background.schedule_grow(uri, ctx, header, refresh)
        self.background.speculate(uri, text, ctx, suggestion, encoding, reserve)
        return suggestion

    async def _run_generation(
        self,
        uri: str,
        ctx: CursorContext,
        narrow: CursorContext | None,
        started: float,
        flag: CancelFlag,
        automatic: bool,
        header: str = "",
        context_ms: float = 0.0,
        paused: bool = False,
        document: str = "",
    ) -> Suggestion:
        """The model's suggestion on the generation thread, with templates answering
        for a failing, crashed or hung engine. `document`: the whole text, as the editor
        has it (the name check and the name guide read it)."""

        def job(flag: CancelFlag) -> Suggestion:
            # Reads `self.current` on the worker: model loads run on the same thread, so
            # the backend cannot be swapped out from under a generation.
            current = self.current
            if not current.serving or current.spec is None:
                return self._template_suggestion(ctx, started)
            suggestion, result = generate_inline(
                current.backend, current.spec, self.settings, ctx, narrow, flag, started,
                automatic, header, context_ms, document=document, paused=paused)
            self.metrics.generation(result.tokens, result.seconds)
            self._count_rerank(suggestion)
            if suggestion.name_guided:
                self.metrics.count("nameGuided")
            if suggestion.names_cut:
                self.metrics.count("namesCut")
            if suggestion.needed_name:
                self.metrics.count("neededName")
            return suggestion

        try:
            suggestion = await asyncio.wait_for(
                self.scheduler.run(uri, job, flag),
                timeout=self.hang_timeout_s + 10,
            )
        except Superseded:
            return Suggestion("", "cancelled", (time.perf_counter() - started) * 1000,
                              finish_reason="cancelled")
        except HostDied as died:
            # The supervisor restarts the host; this request costs one template answer.
            self.metrics.count("engineCrashes")
            log.warning("engine host died during a generation (%s): templates answer",
                        died.reason)
            return self._template_suggestion(ctx, started)
        except TimeoutError:
            flag.cancel()
            self._hung(f"a generation ran past {self.hang_timeout_s:.0f} s")
            return self._template_suggestion(ctx, started)
        except Exception as error:
            # A failing model must not cost the user their suggestion: templates answer.
            self._failed(error)
            return self._template_suggestion(ctx, started)
        if suggestion.source == "model":
            self.supervisor.succeeded()
        if self.health.failures:
            log.info("model healthy again after %d failure(s)", self.health.failures)
            self.health.succeeded()
        if suggestion.finish_reason != "cancelled":
            self.cache.put(uri, ctx.prefix, ctx.suffix, suggestion.text)
            if suggestion.source == "model":
                # Reranking's share is not what the next keystroke waits for.
                self.debounce.observe_latency(
                    (suggestion.latency_ms - suggestion.rerank_ms) / 1000)
                self.metrics.split(latency_split(suggestion))
        return suggestion

    def _count_rerank(self, suggestion: Suggestion) -> None:
        """`reranked` (requests whose candidates were all scored), `rerankCandidates`,
        `rerankChanged` (an alternative won), `rerankGreedy` (it stopped short: budget,
        a single candidate, a failure; the greedy answer stayed)."""
        if suggestion.reranked:
            self.metrics.count("reranked")
            self.metrics.count("rerankCandidates", suggestion.reranked)
        if suggestion.rerank == "changed":
            self.metrics.count("rerankChanged")
        elif suggestion.rerank in ("budget", "single", "failed"):
            self.metrics.count("rerankGreedy")

    def _failed(self, error: BaseException) -> None:
        self.metrics.count("modelErrors")
        backoff = self.health.failed(f"{error.__class__.__name__}: {error}")
        log.error("generation failed (%s: %s); templates answer, next try in %.0f s",
                  error.__class__.__name__, error, backoff)

    def _hung(self, reason: str) -> None:
        """An in-process engine (remote) is stuck: serve templates until a restart, which
        starts a fresh worker (the stuck thread is abandoned)."""
        self.metrics.count("modelHangs")
        self.health.mark_hung(reason)
        log.error("model hung (%s): serving templates until companion/restart", reason)

    # -- background work (engine/background.py) -------------------------------------------

    def pending(self, uri: str) -> bool:
        """A request for `uri` is still unanswered."""
        return uri in self._newest

    async def warm(self, uri: str, text: str, language: str = "python", path: str = "",
                   line: int | None = None, encoding: str = "utf-16") -> None:
        """Prefill a newly opened (top window) or focused (at `line`) document's prompt
        in the background; the first real request there cancels what is left."""
        await self.background.warm(uri, text, language, path, line, encoding)

    # -- free text (hover explanations, explain command) ------------------------------------

    async def generate_text(
        self, key: str, prompt: Prompt, max_tokens: int, timeout_s: float
    ) -> str | None:
        """The model's answer to `prompt` (None with no model loaded), on the generation
        thread; `key` groups requests that supersede each other."""
        if not self.current.serving:
            return None

        def stop_strings(result: StreamResult, chunk: Chunk) -> str:
            hits = [result.output.find(s) for s in prompt.stop if s in result.output]
            if hits:
                result.output = result.output[: min(hits)]
                return "stop"
            return ""

        def job(flag: CancelFlag) -> str | None:
            current = self.current
            if not current.serving:
                return None
            request = GenerationRequest(
                prompt=prompt.text,
                max_tokens=max_tokens,
                stop=list(prompt.stop),
                deadline=time.monotonic() + timeout_s,
                messages=[{"role": role, "content": text} for role, text in prompt.messages],
                cancel=flag,
            )
            return consume(current.backend, request, stop_strings).output.strip()

        return await self.scheduler.run(key, job, CancelFlag())
