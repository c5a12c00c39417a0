"""The backend contract: one small protocol every inference engine implements.

A backend loads one model, streams `Chunk`s for a `GenerationRequest`, and stops between
tokens when the request's cancel flag is set or its deadline passes. Prefix reuse (KV
cache of the longest common prompt prefix) is the backend's business.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

# Re-exported: the backends' contract names them; they live where models/ can import them.
from companion.models.spec import BackendError as BackendError
from companion.models.spec import ModelSpec as ModelSpec


class CancelFlag:
    """A cooperative cancel signal, checked by generation loops between tokens."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` once when cancelled (at once if already cancelled): how a
        cancel reaches the engine host without polling."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


MAX_BARE_NAME_CHARS = 120  # a longer bare name (a minified line) is not guided: the check judges


@dataclass(frozen=True)
class NameGuide:
    """The receivers whose members are known at the cursor (`self`, `os`) → their names,
    for engines that keep the model to names that exist while it decodes
    (backends/name_constraint.py; made by engine/names_guide.py). `tail`: the cursor's
    line before the answer, as the prompt ends; a receiver in `free_at_line_start` is not
    guided where it starts its line (`self.total = 0` defines an attribute); `bare`: the
    bare names that exist, for a name that starts where it must be a use (`return x`)."""

    members: Mapping[str, tuple[str, ...]]
    tail: str = ""
    free_at_line_start: tuple[str, ...] = ()
    # The bare names that exist at the cursor (sorted: keywords, builtins, every name the
    # document spells off the cursor's line); empty: bare names are not guided.
    bare: tuple[str, ...] = ()


@dataclass
class GenerationRequest:
    """What to generate: `prompt` (already laid out for the model: FIM or excerpt)."""

    prompt: str
    max_tokens: int = 64
    stop: list[str] = field(default_factory=list)
    temperature: float = 0.0
    deadline: float | None = None  # time.monotonic() after which generation stops
    # Chat form of the prompt ({"role", "content"} dicts) for backends with a chat API;
    # local engines ignore it and use `prompt`.
    messages: list[dict[str, str]] = field(default_factory=list)
    # Prefill budget (backends with a local prefix cache): when more than
    # `prefill_budget_tokens` of `prompt` are not cached, `narrow_prompt` (the same
    # request with a shorter prefix) runs instead; the first chunk says which ran.
    narrow_prompt: str = ""
    prefill_budget_tokens: int = 0
    # Backends with `Capabilities.rerank`: start from the prompt's `first_token_rank`-th
    # likeliest first token (0: the likeliest, i.e. plain greedy decoding), then decode
    # greedily: a candidate for reranking (engine/rerank.py).
    first_token_rank: int = 0
    # Engines that can touch the logits keep names after a known receiver to those that
    # exist (None: unguided).
    names: NameGuide | None = None
    cancel: CancelFlag = field(default_factory=CancelFlag)

    def should_stop(self) -> bool:
        """True once cancelled or past the deadline."""
        return _stopped(self.cancel, self.deadline)


def _stopped(cancel: CancelFlag, deadline: float | None) -> bool:
    if cancel.cancelled:
        return True
    return deadline is not None and time.monotonic() > deadline


@dataclass
class ScoreRequest:
    """Continuations to score after one prompt (backends with `Capabilities.rerank`):
    the log-probability of each of `continuations` after `prompt`, and of `follow` after
    prompt + that continuation. A backend stops between continuations once cancelled or
    past the deadline, and returns the scores it has (fewer than asked for)."""

    prompt: str
    continuations: list[str]
    follow: str = ""
    deadline: float | None = None  # time.monotonic()
    cancel: CancelFlag = field(default_factory=CancelFlag)

    def should_stop(self) -> bool:
        return _stopped(self.cancel, self.deadline)


@dataclass(frozen=True)
class ContinuationScore:
    """Natural-log probabilities of one continuation's tokens (summed) and of `follow`'s
    tokens after it (summed), with how many tokens each has."""

    logprob: float
    tokens: int
    follow_logprob: float = 0.0
    follow_tokens: int = 0


@dataclass
class Chunk:
    """One piece of streamed output (the shape mlx-lm's generate yields)."""

    text: str
    tokens: int = 1
    finish_reason: str | None = None  # "stop" | "length" | "cancelled" | "deadline"
    prompt_tokens: int = 0  # set on the first chunk
    prefill_ms: float | None = None  # set on the first chunk
    cached_tokens: int = 0  # prompt tokens reused from the previous request
    narrowed: bool = False  # set on the first chunk: `narrow_prompt` ran instead of `prompt`


@dataclass(frozen=True)
class BackendInfo:
    """What `companion/status` shows about a backend."""

    name: str
    model: str
    device: str
    memory_mb: float
    context_tokens: int
    fim: bool = False


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, stated by the backend (the engine never branches on names).

    local_prefix_cache: it keeps the KV cache of the last prompt in this machine's memory,
      so a prefill budget, warm-ups of opened files and background prefills pay off.
    remote: it runs on another machine (a team server): no warm-ups are sent to it.
    in_host: it loads a model library, so it runs in the engine host process.
    safe_mode: it has a conservative configuration to retry in after a native crash.
    rerank: it honours `GenerationRequest.first_token_rank` and scores continuations
      (`Scorer.score`), reusing the prompt's KV cache: candidate reranking.
    name_guide: it honours `GenerationRequest.names` (backends/name_constraint.py).
    """

    local_prefix_cache: bool = True
    remote: bool = False
    in_host: bool = True
    safe_mode: bool = False
    rerank: bool = False
    name_guide: bool = False


class Backend(Protocol):
    """One inference engine with at most one loaded model."""

    name: str
    capabilities: Capabilities

    def load(self, model: ModelSpec) -> None: ...

    def unload(self) -> None: ...

    def info(self) -> BackendInfo: ...

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]: ...


class Scorer(Protocol):
    """What a backend with `Capabilities.rerank` adds to `Backend`."""

    def score(self, request: ScoreRequest) -> list[ContinuationScore]: ...


def close_stream(stream: Iterator[Chunk]) -> None:
    """Stop a backend's generator now (its `finally` frees the engine), not at GC time."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def stop_reason(request: GenerationRequest) -> str:
    """Why a generation loop stopped early: "cancelled" or "deadline"."""
    return "cancelled" if request.cancel.cancelled else "deadline"


class NoModel:
    """The backend slot while no model serves (loading, restarting, or templates only):
    `companion/status` shows it as `templates`; nothing is ever generated from it."""

    name = "templates"
    capabilities = Capabilities(local_prefix_cache=False, in_host=False)

    def load(self, model: ModelSpec) -> None:
        raise BackendError("templates need no model")

    def unload(self) -> None:
        return None

    def info(self) -> BackendInfo:
        return BackendInfo(name=self.name, model="templates", device="none", memory_mb=0.0,
                           context_tokens=0)

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        raise BackendError("no model is loaded: templates answer")
