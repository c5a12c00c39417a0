"""The engine called in this process, for `companion bench latency`: the floor (what the
model itself needs per keystroke, no server, no engine host) and what the process
boundary costs a request (in-process vs through an engine host, alternating)."""

from __future__ import annotations

import time
from typing import Any

from companion.engine.metrics import percentile, summarize
from companion.engine.speculation import line_start


def engine_floor(
    text: str, line: int, keystrokes: str, tokens: int, settings: dict[str, Any]
) -> dict[str, Any] | None:
    """The same model called directly in this process (no server, no engine host), warm,
    on the same prompts the server built while typing, for the same number of tokens:
    what the engine itself needs per keystroke."""
    from companion.backends.base import GenerationRequest
    from companion.backends.registry import load_with_fallback
    from companion.config import parse_settings
    from companion.engine.completer import Engine
    from companion.engine.prompts import build_prompt

    parsed = parse_settings(settings)[0]
    result = load_with_fallback(parsed)  # in this process: the floor has no pipe
    if result.spec is None:
        return None
    spec, backend = result.spec, result.backend
    engine = Engine(parsed)  # for the cursor contexts only: it loads nothing
    document = text[: line_start(text, line)] + "\n" + text[line_start(text, line):]
    prompts: list[str] = []
    row, column, typed = line, 0, ""
    for char in keystrokes:
        typed += char
        row, column = (row + 1, 0) if char == "\n" else (row, column + 1)
        current = document[: line_start(document, line)] + typed + document[
            line_start(document, line):]
        ctx = engine.context_at(current, row, column)
        prompts.append(build_prompt(ctx, spec.family, spec.fim).text)
    timings: list[float] = []
    try:
        for index in range(1, len(prompts)):
            # Warm: the previous keystroke's prompt is what the engine's cache holds.
            for _ in backend.stream(GenerationRequest(prompt=prompts[index - 1], max_tokens=1)):
                pass
            started = time.perf_counter()
            for _ in backend.stream(GenerationRequest(prompt=prompts[index],
                                                      max_tokens=max(1, tokens))):
                pass
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        backend.unload()
        engine.scheduler.shutdown()
    return {"tokensPerRequest": tokens, **summarize(timings)}


def boundary_cost(settings: dict[str, Any], rounds: int = 40) -> dict[str, Any] | None:
    """What the process boundary costs one request: the same fully cached prompt and the
    same 4 tokens, called in this process and through an engine host (pipe, pickling,
    the host's threads), alternating; the difference of the medians."""
    from companion.backends.base import GenerationRequest
    from companion.backends.registry import load_with_fallback
    from companion.config import parse_settings
    from companion.engine.supervisor import Supervisor

    parsed = parse_settings(settings)[0]
    direct = load_with_fallback(parsed)
    if direct.spec is None:
        return None
    supervisor = Supervisor(lambda: parsed, lambda job: job())
    hosted = supervisor.load()
    prompt = "def fibonacci(n):\n    " + "# a comment that fills the prompt\n    " * 20
    timings: dict[str, list[float]] = {"direct": [], "host": []}
    try:
        for round_ in range(rounds + 1):
            for name, backend in (("direct", direct.backend), ("host", hosted.backend)):
                started = time.perf_counter()
                for _ in backend.stream(GenerationRequest(prompt=prompt, max_tokens=4)):
                    pass
                if round_:  # the first round fills both caches
                    timings[name].append((time.perf_counter() - started) * 1000)
    finally:
        direct.backend.unload()
        supervisor.shutdown()
    direct_p50 = percentile(timings["direct"], 0.5) or 0.0
    host_p50 = percentile(timings["host"], 0.5) or 0.0
    return {"rounds": rounds, "directP50Ms": round(direct_p50, 2),
            "hostP50Ms": round(host_p50, 2), "costMs": round(host_p50 - direct_p50, 2)}
