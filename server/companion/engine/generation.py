"""One inline generation on the worker thread: the prompt (full, and narrow for the
prefill budget), the request, the stop rule that ends it as soon as the suggestion is
complete or over budget, the post-processed Suggestion, and candidate reranking where it
is allowed (engine/rerank.py)."""

from __future__ import annotations

import dataclasses
import math
import time

from companion.backends.base import (
    Backend,
    CancelFlag,
    Chunk,
    GenerationRequest,
    ModelSpec,
    NameGuide,
)
from companion.config import Settings
from companion.engine import names, names_guide, rerank, suffix_attributes, suffix_names
from companion.engine.context import CursorContext
from companion.engine.postprocess import PostContext, clean, is_finished, looping
from companion.engine.prompts import Prompt, build_prompt
from companion.engine.stream import StopRule, StreamResult, Suggestion, consume

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
    paused: bool = False,
) -> tuple[Suggestion, StreamResult]:
    """Run one generation, stopping as soon as it is complete.

    `narrow` (a context with a shorter prefix) runs instead when the backend's cache
    lacks too much of the full prompt: the backend decides, since it knows what its
    cache holds. The repository `header` goes ahead of the full prompt only: the narrow
    one is there to keep the prefill short. `started`: when the request came;
    `context_ms`: what building its cursor context and header took before it queued.
    `document`: the whole document, for the name check (without it, the saved file).
    `paused`: an automatic request after a pause, not a keystroke (reranking may run).
    Reranking (engine/rerank.py) runs after the greedy answer where the setting, the
    budget and the backend allow it.
    """
    on_worker = time.perf_counter()
    queue_ms = max(0.0, (on_worker - started) * 1000 - context_ms)
    family, fim = spec.family, spec.fim
    typed = needed_start(settings, ctx, document, fim, automatic)
    if typed:  # as if the user had typed it: the model goes on from there
        ctx = typed_context(ctx, typed)
        narrow = typed_context(narrow, typed) if narrow is not None else None
    prompt = build_prompt(ctx, family, fim, repo_header=header)
    small = build_prompt(narrow, family, fim) if narrow is not None else None
    posts = {False: PostContext(ctx), True: PostContext(narrow or ctx)}
    prompts = {False: prompt, True: small or prompt}
    guide = name_guide(backend, settings, prompt, posts[False], document, automatic)
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
        names=guide,
        cancel=flag,
    )

    rule = stop_rule(prompts, posts, soft_deadline, hard_budget)

    result = consume(backend, request, rule)
    used, post = prompts[result.narrowed], posts[result.narrowed]
    generation_ms = result.seconds * 1000
    finish = "cancelled" if flag.cancelled else result.finish
    post_started = time.perf_counter()
    text, undefined = final_text(used, post, result.output, document, automatic)
    post_ms = (time.perf_counter() - post_started) * 1000
    # Reranking, where allowed: a FIM model sees the suffix already; a model answer that
    # is empty or cancelled stays so.
    outcome = None
    allowed_ms = rerank.budget_ms(settings, automatic, paused)
    scorer = rerank.scorer_of(backend) if allowed_ms and not fim else None
    follow = rerank.follow_text(ctx.suffix) if scorer is not None else ""
    if scorer is not None and follow and text and finish != "cancelled":
        deadline = time.monotonic() + started + allowed_ms / 1000 - time.perf_counter()
        limit = min(settings.max_tokens, max(16, 2 * result.tokens))
        outcome = rerank.rerank(
            scorer, used.text, used.heal, rerank.Candidate(text, 0, undefined),
            _alternatives(backend, used, post, limit, flag, document, automatic, guide),
            follow, deadline, flag)
        text = outcome.text
        finish = "cancelled" if flag.cancelled else finish
    suggestion = Suggestion(
        with_typed(typed, text),
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
        post_ms=post_ms,
        reranked=outcome.candidates if outcome else 0,
        rerank=outcome.reason if outcome else "",
        rerank_ms=outcome.ms if outcome else 0.0,
        name_guided=guide is not None,
        names_cut=undefined,
        needed_name=bool(typed),
    )
    return suggestion, result


def needed_start(settings: Settings, ctx: CursorContext, document: str, fim: bool,
                 automatic: bool = True) -> str:
    """`name =` where the line at the cursor is blank and the code below needs a name
    nothing binds (engine/suffix_names.py), else `self.x =` where the class reads an
    attribute nothing assigns (engine/suffix_attributes.py); "" otherwise, or for a FIM
    model (it sees the code below itself)."""
    if (not settings.needed_name or fim or ctx.language != "python" or not document
            or ctx.line_prefix.strip() or ctx.line_suffix.strip()):
        return ""
    name = suffix_names.needed_name(document, ctx.line) or suffix_attributes.needed_self_attribute(
        ctx, document, names.TYPING_WAIT_S if automatic else names.INVOKED_WAIT_S)
    return f"{name} =" if name else ""


def with_typed(typed: str, text: str) -> str:
    """The suggestion for a request started on `typed`: `typed` and the model's text, or
    that text alone when it says `typed` again; "" when the model wrote nothing."""
    if not typed or not text.strip():
        return text if not typed else ""
    return text.lstrip() if text.lstrip().startswith(typed) else typed + text


def typed_context(ctx: CursorContext, typed: str) -> CursorContext:
    """`ctx` as if `typed` had been typed at the cursor."""
    return dataclasses.replace(ctx, prefix=ctx.prefix + typed,
                               line_prefix=ctx.line_prefix + typed,
                               column=ctx.column + len(typed))


def stop_rule(prompts: dict[bool, Prompt], posts: dict[bool, PostContext],
              soft_deadline: float, hard_budget: float) -> StopRule:
    """The rule that ends an inline generation (keyed by whether the backend ran the
    narrow prompt): at a stop string, a loop, the end of the block, or the budget
    (time.perf_counter() values)."""

    def rule(result: StreamResult, chunk: Chunk) -> str:
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

    return rule


def final_text(used: Prompt, post: PostContext, output: str, document: str,
               automatic: bool) -> tuple[str, bool]:
    """The suggestion in a model's output: healed, cut at a stop string, post-processed
    and cut before the first name that exists nowhere (engine/names.py; what is left is
    post-processed again: it closes the brackets); and whether that name cut it."""
    raw = used.healed(output)
    stop_at = min((raw.find(s) for s in used.stop if s in raw), default=-1)
    if stop_at >= 0:
        raw = raw[:stop_at]
    cleaned = clean(raw, post).text
    text = names.check(cleaned, post, lambda kept: clean(kept, post).text, document, automatic)
    return text, text != cleaned


def name_guide(backend: Backend, settings: Settings, prompt: Prompt, post: PostContext,
               document: str, automatic: bool) -> NameGuide | None:
    """The receivers whose names are known at the cursor, for an engine that keeps the
    model to them (engine/names_guide.py); None when off, not supported or none known."""
    if not settings.name_guide or not backend.capabilities.name_guide:
        return None
    members = names_guide.member_table(post, document, automatic)
    bare = names_guide.bare_names(post, document)
    if not members and not bare:
        return None
    line = post.cursor.line_prefix
    return NameGuide(members, tail=line[: len(line) - len(prompt.heal)],
                     free_at_line_start=names_guide.FREE_AT_LINE_START, bare=bare)


def _alternatives(backend: Backend, used: Prompt, post: PostContext, limit: int,
                  flag: CancelFlag, document: str, automatic: bool,
                  guide: NameGuide | None = None) -> rerank.Alternative:
    """Reranking's other candidates: `used` (the prompt the greedy answer came from, its
    KV cache warm) from its `rank`-th likeliest first token, then as the greedy one."""
    fixed_prompts, fixed_posts = {False: used, True: used}, {False: post, True: post}
    finishing = stop_rule(fixed_prompts, fixed_posts, math.inf, math.inf)

    def alternative(rank: int, until: float) -> rerank.Candidate | None:
        request = GenerationRequest(prompt=used.text, max_tokens=limit, stop=list(used.stop),
                                    deadline=until, first_token_rank=rank, names=guide,
                                    cancel=flag)

        def rule(result: StreamResult, chunk: Chunk) -> str:
            output, heal = result.output, used.heal
            if heal and not (output.startswith(heal) or heal.startswith(output)):
                return "unhealed"  # a first token the healed prompt does not allow
            if time.monotonic() > until:
                return "deadline"
            return finishing(result, chunk)

        result = consume(backend, request, rule)
        if flag.cancelled or result.finish in ("unhealed", "deadline", "cancelled"):
            return None
        text, undefined = final_text(used, post, result.output, document, automatic)
        return rerank.Candidate(text, rank, undefined)

    return alternative
