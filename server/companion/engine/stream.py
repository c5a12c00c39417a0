"""What a pass over a backend's stream yields: `consume`, the one loop over every
stream (inline completions, prefills, free text), its `StreamResult`, and the
`Suggestion` the pipeline answers with."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from companion.backends.base import Backend, Chunk, GenerationRequest, close_stream


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
    context_ms: float = 0.0  # cursor context, repository header and prompt building
    queue_ms: float = 0.0  # debounce and waiting for the generation thread
    narrowed: bool = False  # the prompt was cut to fit the prefill budget
    prefill_ms: float = 0.0  # prompt processing in the engine (0 when fully cached)
    decode_ms: float = 0.0  # token generation after the prefill
    repo_context_chars: int = 0  # the repository header in the prompt (0: none)
    post_ms: float = 0.0  # post-processing of the final text
    reranked: int = 0  # candidates reranking scored (0: it did not run to the end)
    rerank: str = ""  # how reranking ended (engine/rerank.py Outcome.reason); "": not tried
    rerank_ms: float = 0.0  # the other candidates and their scores
    name_guided: bool = False  # the engine kept names after known receivers to real ones
    names_cut: bool = False  # the name check cut the answer before a name that is not there
    needed_name: bool = False  # started on `name =`: the code below needs it (suffix_names)


@dataclass
class StreamResult:
    """What one pass over a backend's stream produced."""

    output: str = ""
    tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    prefill_ms: float = 0.0
    prefilled: bool = False  # the prompt was processed (the first chunk came)
    narrowed: bool = False  # the backend ran the request's narrow prompt
    finish: str = ""
    seconds: float = 0.0


# Looks at the output so far after each chunk; returns a finish reason to stop there
# (and may shorten the result's output), or "" to go on.
StopRule = Callable[[StreamResult, Chunk], str]


def consume(backend: Backend, request: GenerationRequest, rule: StopRule) -> StreamResult:
    """The one loop over a backend's stream: inline completions, prefills and free text
    all run through it. The stream is closed as soon as `rule` stops it (the engine
    stops within a token)."""
    result = StreamResult()
    started = time.perf_counter()
    stream = backend.stream(request)
    try:
        for chunk in stream:
            result.output += chunk.text
            result.tokens += chunk.tokens
            if chunk.prefill_ms is not None and not result.prefilled:
                result.prefilled, result.narrowed = True, chunk.narrowed
                result.prompt_tokens, result.cached_tokens = (chunk.prompt_tokens,
                                                              chunk.cached_tokens)
                result.prefill_ms = chunk.prefill_ms
            if chunk.finish_reason:
                result.finish = chunk.finish_reason
                break
            finish = rule(result, chunk)
            if finish:
                result.finish = finish
                break
    finally:
        close_stream(stream)
        result.seconds = time.perf_counter() - started
    return result
