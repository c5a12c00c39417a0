"""What the engine does between requests, at low priority: warming a newly opened or
focused file, processing the full window after a pause (the prefill budget's other half),
and the next suggestion as if the shown one were accepted.

Every piece runs on the generation thread under its document's key, so the next real
request for that document cancels it (within one prefill chunk or one token); nothing here
is ever shown directly, and a failure here is logged at debug level only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from companion.backends.base import CancelFlag, GenerationRequest
from companion.engine import names_guide
from companion.engine.context import CursorContext
from companion.engine.generation import PREFILL_BUDGET_TOKENS, generate_inline
from companion.engine.postcontext import PostContext
from companion.engine.prompts import build_prompt
from companion.engine.scheduler import Superseded
from companion.engine.speculation import after_enter, as_accepted
from companion.engine.stream import Suggestion, consume
from companion.host.prefix import CHARS_PER_TOKEN

if TYPE_CHECKING:
    from companion.engine.completer import Engine

log = logging.getLogger(__name__)

# The narrow prompt moves in steps of SMALL_STEP_LINES lines; the full window is processed
# in the background once the user pauses for GROW_AFTER_S.
SMALL_STEP_LINES = 4
GROW_AFTER_S = 0.4


class Background:
    """The engine's background work (one instance per Engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._grow_timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._warming: dict[str, CancelFlag] = {}  # warm-ups waiting or running
        self._speculating: dict[str, CancelFlag] = {}  # next suggestions being made
        self._flags: set[CancelFlag] = set()  # every background job waiting or running

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def shutdown(self) -> None:
        for uri in list(self._grow_timers):
            self.cancel_grow(uri)

    def narrow_context(self, text: str, line: int, character: int, ctx: CursorContext,
                       encoding: str) -> CursorContext | None:
        """The short-prefix context the prefill budget falls back to (engines with a
        local prefix cache only)."""
        engine = self.engine
        if not engine.current.backend.capabilities.local_prefix_cache:
            return None
        return engine.context_at(text, line, character, ctx.language, ctx.path, encoding,
                                 PREFILL_BUDGET_TOKENS, SMALL_STEP_LINES)

    # -- prefills: the full window after a pause, warm-ups --------------------------------

    def cancel_grow(self, uri: str) -> None:
        timer = self._grow_timers.pop(uri, None)
        if timer is not None:
            timer.cancel()

    def schedule_grow(self, uri: str, ctx: CursorContext, header: str = "",
                      refresh: Callable[[], str] | None = None) -> None:
        """After a pause, process the full window at the cursor, so the next request
        there gets the whole context at the price of a short prefill. `refresh` makes the
        repository header anew first (jedi had not answered in time)."""
        self.cancel_grow(uri)

        async def grow() -> None:
            nonlocal header
            if refresh is not None:
                header = await asyncio.to_thread(refresh)
            await self.prefill(uri, ctx, "grows", header)

        def start() -> None:
            self._grow_timers.pop(uri, None)
            self._start(grow())

        self._grow_timers[uri] = asyncio.get_running_loop().call_later(GROW_AFTER_S, start)

    def preempt(self) -> None:
        """A real request is about to queue for the generation thread: every background
        job (any document's) gives way, within one prefill chunk or one token."""
        for flag in list(self._flags):
            flag.cancel()

    def focus(self, uri: str) -> None:
        """The user looks at `uri`: other documents' warm-ups and next suggestions give
        way (the generation thread does one thing at a time, and the focused file's comes
        first; the file left behind speculates again after its next suggestion)."""
        for jobs in (self._warming, self._speculating):
            for other, flag in list(jobs.items()):
                if other != uri:
                    flag.cancel()

    async def prefill(self, uri: str, ctx: CursorContext, counter: str,
                      header: str = "") -> bool:
        """Process the prompt for `ctx` on the generation thread without keeping any
        output; True when it was processed (not cancelled by a real request)."""
        engine = self.engine
        flag = CancelFlag()
        self._flags.add(flag)
        if counter == "warmups":
            self._warming[uri] = flag

        def job(flag: CancelFlag) -> bool:
            current = engine.current
            if not current.serving or not current.backend.capabilities.local_prefix_cache:
                return False
            assert current.spec is not None
            prompt = build_prompt(ctx, current.spec.family, current.spec.fim,
                                  repo_header=header)
            request = GenerationRequest(prompt=prompt.text, max_tokens=1, cancel=flag)
            result = consume(current.backend, request,
                             lambda result, chunk: "prefilled" if result.prefilled else "")
            if result.prefilled and not flag.cancelled:
                engine.metrics.count(counter)
                return True
            return False

        try:
            return await engine.scheduler.run(uri, job, flag)
        except Exception as error:  # background work never matters enough to report loudly
            log.debug("background prefill of %s skipped: %s", uri, error)
            return False
        finally:
            self._flags.discard(flag)
            if self._warming.get(uri) is flag:
                del self._warming[uri]

    async def warm(self, uri: str, text: str, language: str = "python", path: str = "",
                   line: int | None = None, encoding: str = "utf-16") -> None:
        """Prefill a document's prompt ahead of its first suggestion. At `line` (where the
        editor shows its cursor): the narrow window there first (a fast first suggestion),
        then the full window. Without a line: the top window, where a newly opened file
        is first looked at."""
        engine = self.engine
        current = engine.current
        ctx = engine.context_at(text, line, 0, language, path, encoding) \
            if line is not None else None
        if ctx is not None and language == "python" and text.strip():
            self._prefetch_names(ctx, text)
        if (not current.serving or not current.backend.capabilities.local_prefix_cache
                or not text.strip()):
            return
        if ctx is None or line is None:
            budget = int((engine.settings.context_tokens - engine.settings.max_tokens)
                         * CHARS_PER_TOKEN * 0.8)
            head = text[:budget]
            head = head[: head.rfind("\n") + 1] if "\n" in head else head
            lines = head.split("\n")
            await self.prefill(uri, engine.context_at(head, len(lines) - 1, 0, language,
                                                      path), "warmups")
            return
        narrow = self.narrow_context(text, line, 0, ctx, encoding)
        if narrow is not None and not await self.prefill(uri, narrow, "warmups"):
            return
        await self.prefill(uri, ctx, "warmups")

    @staticmethod
    def _prefetch_names(ctx: CursorContext, text: str) -> None:
        """The name guide's and check's jedi lookups for the cursor's place, started now
        (engine/names_guide.py); a failure only means they start at the first request."""
        try:
            names_guide.prefetch(PostContext(ctx), text)
        except Exception as error:
            log.debug("name lookups not prefetched: %s", error)

    # -- the next suggestion, as if this one were accepted --------------------------------

    def speculate(self, uri: str, text: str, ctx: CursorContext, shown: Suggestion,
                  encoding: str, reserve: int) -> None:
        """Generate the suggestion for the document with `shown` accepted, into the
        result cache, so the request after an accept (or after typing the suggestion
        out) is a cache hit; hits chain, so an accept after an accept stays warm."""
        engine = self.engine
        if (not engine.settings.speculate or not shown.text
                or shown.source not in ("model", "cache") or engine.pending(uri)
                or not engine.current.serving or not engine.health.may_try()):
            return
        accepted_at = as_accepted(text, ctx.line, ctx.column, shown.text, encoding)
        entered = after_enter(text, ctx.line, ctx.column, shown.text, ctx.language, encoding)
        flag = CancelFlag()
        self._flags.add(flag)
        self._speculating[uri] = flag

        async def one(accepted: str, row: int, character: int) -> Suggestion | None:
            after = engine.context_at(accepted, row, character, ctx.language, ctx.path,
                                      encoding, reserve_chars=reserve)
            cached = engine.cache.get(uri, after.prefix, after.suffix)
            if cached is not None:
                return Suggestion(cached, "cache", 0.0)
            narrow = self.narrow_context(accepted, row, character, after, encoding)
            started = time.perf_counter()

            def job(flag: CancelFlag) -> Suggestion | None:
                current = engine.current
                if not current.serving or current.spec is None:
                    return None
                suggestion, result = generate_inline(
                    current.backend, current.spec, engine.settings, after, narrow, flag,
                    started, automatic=True, document=accepted)
                engine.metrics.generation(result.tokens, result.seconds)
                return suggestion

            suggestion = await engine.scheduler.run(uri, job, flag)
            if suggestion is not None and suggestion.finish_reason != "cancelled":
                engine.cache.put(uri, after.prefix, after.suffix, suggestion.text)
                engine.metrics.count("speculated")
            return suggestion

        async def run() -> None:
            # At the end of the accepted text; when that leaves nothing to suggest, on
            # the fresh line an Enter there gives (the user's next key).
            try:
                first = await one(*accepted_at)
                if entered is not None and first is not None and not first.text.strip() \
                        and first.finish_reason != "cancelled" and not flag.cancelled:
                    await one(*entered)
            except Superseded:
                return
            except Exception as error:  # the real request will meet it and report it
                log.debug("speculative suggestion in %s skipped: %s", uri, error)
                return
            finally:
                self._flags.discard(flag)
                if self._speculating.get(uri) is flag:
                    del self._speculating[uri]

        self._start(run())
