"""A test-only wrapper that makes a real backend fail the way real models do.

Enabled only by the environment variable COMPANION_TEST_FAULT (the fault-injection tests
set it on the server process): `load` (loading fails), `raise[:N]` (a generation raises
mid-stream), `oom[:N]` (MemoryError), `hang` (a generation never returns). With `:N` only
the first N generations of the engine host fail (the count survives reloads), so
recovery can be tested. Prefill-only requests (max_tokens=1: the warm-up) pass through.
COMPANION_HANG_TIMEOUT_S shortens the time after which a generation counts as hung.

Native faults kill the engine host the way a bad build or the OOM killer would:
`crash[:N]` (SIGKILL mid-generation, the first N host processes), `sigill-unsafe` (SIGILL
while loading, unless in safe mode: an AMX fault), `crash-load` (SIGSEGV while loading,
safe mode too).
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from collections.abc import Iterator

from companion.backends.base import (
    Backend,
    BackendError,
    BackendInfo,
    Chunk,
    ContinuationScore,
    GenerationRequest,
    ModelSpec,
    ScoreRequest,
    close_stream,
)

ENVIRONMENT = "COMPANION_TEST_FAULT"
CRASHES_ENV = "COMPANION_HOST_CRASHES"  # set by the supervisor on each host it starts


def die(sig: signal.Signals) -> None:
    """End this process by `sig`, as a native fault would (no core file)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    os.kill(os.getpid(), sig)


def configured_fault() -> tuple[str, int | None] | None:
    """(mode, how many generations fail) from the environment, or None."""
    raw = os.environ.get(ENVIRONMENT, "").strip()
    if not raw:
        return None
    mode, _, count = raw.partition(":")
    return mode, int(count) if count.isdigit() else None


class FaultyBackend:
    """Delegates to a real backend, failing as configured."""

    remaining: int | None = None  # per process, not per instance: reloads do not reset it
    _counted = False

    def __init__(self, inner: Backend, mode: str, failures: int | None) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.mode = mode
        if not FaultyBackend._counted:
            if mode == "hang" and failures is not None:
                # each hang costs the host its life: the hosts before this one used some
                failures = max(0, failures - int(os.environ.get(CRASHES_ENV, "0") or 0))
            FaultyBackend.remaining, FaultyBackend._counted = failures, True
        self._never = threading.Event()

    def load(self, model: ModelSpec) -> None:
        if self.mode == "load":
            raise BackendError(f"injected fault: {model.name} failed to load")
        self.inner.load(model)
        if self.mode == "crash-load" or (self.mode == "sigill-unsafe" and not model.safe_mode):
            die(signal.SIGSEGV if self.mode == "crash-load" else signal.SIGILL)

    def unload(self) -> None:
        self.inner.unload()

    def info(self) -> BackendInfo:
        return self.inner.info()

    def score(self, request: ScoreRequest) -> list[ContinuationScore]:
        score = getattr(self.inner, "score", None)
        if score is None:
            raise BackendError(f"{self.name} cannot score continuations")
        scores: list[ContinuationScore] = score(request)
        return scores

    @staticmethod
    def _fails_now() -> bool:
        if FaultyBackend.remaining is None:
            return True
        if FaultyBackend.remaining > 0:
            FaultyBackend.remaining -= 1
            return True
        return False

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        if self.mode == "crash" and request.max_tokens > 1:
            crashes = int(os.environ.get(CRASHES_ENV, "0") or 0)
            if FaultyBackend.remaining is None or crashes < FaultyBackend.remaining:
                # Dies once the first token is computed, before handing it out: a consumer
                # that stops early (a short answer) must not get past the crash.
                next(self.inner.stream(request), None)
                die(signal.SIGKILL)
        failing = self.mode in ("raise", "oom", "hang") and request.max_tokens > 1
        if failing and self._fails_now():
            if self.mode == "hang":
                self._never.wait()  # a native call that never returns ignores cancel flags
            stream = self.inner.stream(request)
            yield from itertools.islice(stream, 2)
            close_stream(stream)
            if self.mode == "oom":
                raise MemoryError("injected fault: out of memory while generating")
            raise RuntimeError("injected fault: the engine raised mid-generation")
        yield from self.inner.stream(request)
