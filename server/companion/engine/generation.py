"""One inline generation on the worker thread: the prompt (full, and narrow for the
prefill budget), the request, the stop rule that ends it as soon as the suggestion is
complete or over budget, and the post-processed Suggestion."""

from __future__ import annotations

import time

from companion.backends.base import Backend, CancelFlag, Chunk, GenerationRequest, ModelSpec
from companion.config import Settings
from companion.engine import names
from companion.engine.context import CursorContext
from companion.engine.postprocess import PostContext, clean, is_finished, looping
from companion.engine.prompts import build_prompt
from companion.engine.stream import StreamResult, Suggestion, consume

# A request pays for at most this many prompt tokens the engine has not processed yet
# (~0.5 s on two cores with the embedded model). When the full window is not cached —
# a newly opened file, a jump, the window moving down — the prompt is cut to the last
# lines before the cursor (moving in SMALL_STEP_LINES steps), and the full window is
# processed in the background once the user pauses. The engine host decides
# (host/prefix.py): it knows what its KV cache holds.
PREFILL_BUDGET_TOKENS = 160
# Automatic (as-you-type) requests stop at the first line end past this budget; an
# explicit invocation gets the whole `inlineDeadlineMs`.
TYPING_BUDGET_MS = 300


def generate_inline(
    backend: Backend,
    spec: ModelSpec,
    settings: Settings,
    ctx: CursorContext,
    narrow: CursorContext | None,
    flag: CancelFlag,
    started: float,
    automatic: bool = False,
    header: str = "",
    context_ms: float = 0.0,
    document: str = "",
) -> tuple[Suggestion, StreamResult]:
    """Run one generation, stopping as soon as it is complete.

    `narrow` (a context with a shorter prefix) runs instead when the backend's cache
    lacks too much of the full prompt: the backend decides, since it knows what its
    cache holds. The repository `header` goes ahead of the full prompt only: the narrow
    one is there to keep the prefill short. `started`: when the request came;
    `context_ms`: what building its cursor context and header took before it queued.
    `document`: the whole document, for the name check (without it, the saved file).
    """
    on_worker = time.perf_counter()
    queue_ms = max(0.0, (on_worker - started) * 1000 - context_ms)
    family, fim = spec.family, spec.fim
    prompt = build_prompt(ctx, family, fim, repo_header=header)
    small = build_prompt(narrow, family, fim) if narrow is not None else None
    posts = {False: PostContext(ctx), True: PostContext(narrow or ctx)}
    prompts = {False: prompt, True: small or prompt}
    context_ms += (time.perf_counter() - on_worker) * 1000
    budget_ms = settings.inline_deadline_ms
    if automatic:
        budget_ms = min(budget_ms, TYPING_BUDGET_MS)
    soft_deadline = started + budget_ms / 1000
    hard_budget = started + (2 * budget_ms if automatic else 4 * budget_ms) / 1000
    request = GenerationRequest(
        prompt=prompt.text,
        max_tokens=settings.max_tokens,
        stop=list(prompt.stop),
        deadline=time.monotonic() + 2 * settings.inline_deadline_ms / 1000,
        narrow_prompt=small.text if small is not None else "",
        prefill_budget_tokens=PREFILL_BUDGET_TOKENS if small is not None else 0,
        cancel=flag,
    )

    def rule(result: StreamResult, chunk: Chunk) -> str:
        """Stop at a stop string, a loop, the end of the block, or the budget."""
        used, post = prompts[result.narrowed], posts[result.narrowed]
        raw = used.healed(result.output)
        stop_at = min((raw.find(s) for s in used.stop if s in raw), default=-1)
        if stop_at >= 0:
            return "stop"
        if looping(raw[-96:]):  # the filters cut the loop; no need to finish it
            return "loop"
        if time.perf_counter() > hard_budget and clean(raw, post).text:
            return "deadline"  # as-you-type: no line end in sight, show what is there
        if "\n" in chunk.text:
            if is_finished(raw, post):
                return "complete"
            # Over budget: return what is there at this line end, if anything.
            if time.perf_counter() > soft_deadline and clean(raw, post).text:
                return "deadline"
        return ""

    result = consume(backend, request, rule)
    used, post = prompts[result.narrowed], posts[result.narrowed]
    raw = used.healed(result.output)
    stop_at = min((raw.find(s) for s in used.stop if s in raw), default=-1)
    if stop_at >= 0:
        raw = raw[:stop_at]
    generation_ms = result.seconds * 1000
    finish = "cancelled" if flag.cancelled else result.finish
    post_started = time.perf_counter()
    text = clean(raw, post).text
    # Names that exist (engine/names.py): cut before the first use of a name that does
    # not, then post-process what is left again (it closes the brackets).
    text = names.check(text, post, lambda kept: clean(kept, post).text, document, automatic)
    suggestion = Suggestion(
        text,
        "model",
        (time.perf_counter() - started) * 1000,
        result.tokens,
        result.prompt_tokens,
        result.cached_tokens,
        finish,
        context_ms=context_ms,
        prefill_ms=result.prefill_ms,
        decode_ms=max(0.0, generation_ms - result.prefill_ms),
        narrowed=result.narrowed,
        repo_context_chars=0 if result.narrowed else len(header),
        queue_ms=queue_ms,
        post_ms=(time.perf_counter() - post_started) * 1000,
    )
    return suggestion, result
