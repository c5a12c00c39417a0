"""The messages between the language server and its engine host.

They travel as pickles over one `multiprocessing.connection` (a Unix socket, a named pipe
on Windows) opened with a random authentication key that only the two processes know.
Measured on a 2-core x86 machine: a request plus its first chunk cost ~0.1 ms of pipe time.

server → host: LoadModel, Generate, Next, Score, Cancel, Stop
host → server: Ready (once), Loaded | LoadFailed, Output… then Finished | Failed (a
Generate), Scored | Failed (a Score), and a Heartbeat every HEARTBEAT_S while alive (a
stopped or wedged host goes silent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from companion.backends.base import (
    BackendInfo,
    Capabilities,
    Chunk,
    ContinuationScore,
    GenerationRequest,
    ModelSpec,
    NameGuide,
    ScoreRequest,
)
from companion.backends.faulty import CRASHES_ENV as FAULT_CRASHES_ENV

HEARTBEAT_S = 1.0
ADDRESS_ENV = "COMPANION_HOST_ADDRESS"
AUTHKEY_ENV = "COMPANION_HOST_AUTHKEY"
CRASHES_ENV = FAULT_CRASHES_ENV  # host crashes so far (read by the fault-injection tests)


@dataclass(frozen=True)
class LoadModel:
    backend: str
    spec: ModelSpec


@dataclass(frozen=True)
class RequestData:
    """A GenerationRequest without its cancel flag (a Cancel message sets the host's);
    the deadline is relative, since the two processes' clocks need not agree."""

    prompt: str
    max_tokens: int
    stop: list[str]
    temperature: float
    deadline_in_s: float | None
    messages: list[dict[str, str]] = field(default_factory=list)
    narrow_prompt: str = ""
    prefill_budget_tokens: int = 0
    first_token_rank: int = 0
    names: NameGuide | None = None


def pack(request: GenerationRequest, now: float) -> RequestData:
    return RequestData(
        prompt=request.prompt,
        max_tokens=request.max_tokens,
        stop=list(request.stop),
        temperature=request.temperature,
        deadline_in_s=None if request.deadline is None else request.deadline - now,
        messages=list(request.messages),
        narrow_prompt=request.narrow_prompt,
        prefill_budget_tokens=request.prefill_budget_tokens,
        first_token_rank=request.first_token_rank,
        names=request.names,
    )


def unpack(data: RequestData, now: float) -> GenerationRequest:
    return GenerationRequest(
        prompt=data.prompt,
        max_tokens=data.max_tokens,
        stop=list(data.stop),
        temperature=data.temperature,
        deadline=None if data.deadline_in_s is None else now + data.deadline_in_s,
        messages=list(data.messages),
        narrow_prompt=data.narrow_prompt,
        prefill_budget_tokens=data.prefill_budget_tokens,
        first_token_rank=data.first_token_rank,
        names=data.names,
    )


@dataclass(frozen=True)
class ScoreData:
    """A ScoreRequest without its cancel flag, the deadline relative (as RequestData)."""

    prompt: str
    continuations: list[str]
    follow: str
    deadline_in_s: float | None


def pack_score(request: ScoreRequest, now: float) -> ScoreData:
    return ScoreData(request.prompt, list(request.continuations), request.follow,
                     None if request.deadline is None else request.deadline - now)


def unpack_score(data: ScoreData, now: float) -> ScoreRequest:
    return ScoreRequest(data.prompt, list(data.continuations), data.follow,
                        None if data.deadline_in_s is None else now + data.deadline_in_s)


@dataclass(frozen=True)
class Generate:
    id: int
    request: RequestData


@dataclass(frozen=True)
class Next:
    """The server took the last Output: compute the next token. Generation is lazy, as
    an in-process generator is: the host never decodes ahead while the server post-
    processes, so the two processes never fight over the cores (on two cores, decoding
    ahead made typing ~12 % slower), and a closed stream stops before another token."""

    id: int


@dataclass(frozen=True)
class Score:
    """Score continuations (backends with `Capabilities.rerank`); a Cancel stops it
    between two of them."""

    id: int
    request: ScoreData


@dataclass(frozen=True)
class Cancel:
    id: int


@dataclass(frozen=True)
class Stop:
    """Unload and exit."""


@dataclass(frozen=True)
class Ready:
    pid: int


@dataclass(frozen=True)
class Loaded:
    info: BackendInfo
    capabilities: Capabilities
    self_test_ms: float  # the one-token generation run before serving
    engine_features: str  # llama.cpp's system info (CPU features in use), or ""


@dataclass(frozen=True)
class LoadFailed:
    error: str


@dataclass(frozen=True)
class Output:
    id: int
    chunk: Chunk


@dataclass(frozen=True)
class Finished:
    id: int


@dataclass(frozen=True)
class Scored:
    id: int
    scores: list[ContinuationScore]  # fewer than asked for: stopped (cancel, deadline)


@dataclass(frozen=True)
class Failed:
    id: int
    kind: str  # "memory" | "error"
    message: str


@dataclass(frozen=True)
class Heartbeat:
    rss_mb: float
