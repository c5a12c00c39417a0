"""llama.cpp through llama-cpp-python: the default CPU engine (GGUF models).

Prefix reuse: `Llama.generate` keeps the KV cache of the longest common token prefix
between consecutive prompts, so a stable prompt layout makes a keystroke cost only its
new tokens. Imported lazily so the server starts without llama-cpp-python.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from companion.backends.base import (
    BackendError,
    BackendInfo,
    Capabilities,
    Chunk,
    ContinuationScore,
    GenerationRequest,
    ModelSpec,
    ScoreRequest,
    stop_reason,
)
from companion.backends.name_constraint import NameConstraint, NameTable, Vocabulary, apply
from companion.backends.tokens import common_prefix_length, default_threads

log = logging.getLogger(__name__)

PREFILL_CHUNK = 128  # tokens evaluated between two looks at the cancel flag
# What a scored continuation and the suffix line after it may take (tokens): one batch.
SCORE_CONTINUATION_TOKENS = 160
SCORE_FOLLOW_TOKENS = 64


@contextlib.contextmanager
def _without_extra_buffers(bindings: Any, safe: bool) -> Iterator[None]:
    """In safe mode, load with `use_extra_bufts = False`: no extra CPU buffer types, so
    no repacked (AMX, …) weights. `Llama()` has no parameter for it, so the default
    model parameters it starts from are patched while it loads."""
    if not safe:
        yield
        return
    original = bindings.llama_model_default_params

    def safe_params() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = safe_params
    try:
        yield
    finally:
        bindings.llama_model_default_params = original


def system_info() -> str:
    """The CPU features this llama.cpp build uses (its own `llama_print_system_info`)."""
    try:
        import llama_cpp
    except ImportError:
        return ""
    raw: bytes = llama_cpp.llama_print_system_info()
    return raw.decode("utf-8", "replace").strip()


class LlamaCppBackend:
    """GGUF models on the CPU (or Metal/CUDA when llama.cpp was built with them)."""

    name = "llamacpp"
    capabilities = Capabilities(safe_mode=True, rerank=True, name_guide=True)

    def __init__(self) -> None:
        self._llm: Any = None
        self._spec: ModelSpec | None = None
        self._last_tokens: list[int] = []
        from companion.backends.llamacpp_lookup import LookupSettings

        # Prompt-lookup drafting (backends/llamacpp_lookup.py); the bench switches it.
        self.lookup = LookupSettings.from_env()
        self._decoder: Any = None
        self._logits: Any = None  # llamacpp_scoring.BatchLogits, made on first use
        self._vocab: Vocabulary | None = None  # each token's text, made on first use

    def load(self, model: ModelSpec) -> None:
        if not model.path.endswith(".gguf") or not os.path.isfile(model.path):
            raise BackendError(f"llama.cpp needs a GGUF file, got {model.path}")
        try:
            import llama_cpp
            from llama_cpp import Llama
        except ImportError as error:
            raise BackendError(f"llama-cpp-python is not installed ({error})") from error
        try:
            with _without_extra_buffers(llama_cpp.llama_cpp, model.safe_mode):
                self._llm = Llama(
                    model_path=model.path,
                    n_ctx=model.context_tokens,
                    n_threads=model.threads or default_threads(),
                    n_batch=512,
                    verbose=False,
                )
        except Exception as error:  # llama.cpp raises ValueError/RuntimeError on bad files
            raise BackendError(f"llama.cpp could not load {model.path}: {error}") from error
        self._spec = model
        self._last_tokens = []
        self._vocab = None

    def unload(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
        self._decoder = None
        if self._logits is not None:
            self._logits.close()
        self._logits = None
        if self._llm is not None:
            self._llm.close()
        self._llm = None
        self._spec = None
        self._last_tokens = []
        self._vocab = None

    def info(self) -> BackendInfo:
        spec = self._spec
        size_mb = os.path.getsize(spec.path) / 2**20 if spec else 0.0
        return BackendInfo(
            name=self.name,
            model=spec.name if spec else "",
            device="cpu",
            memory_mb=round(size_mb, 1),
            context_tokens=spec.context_tokens if spec else 0,
            fim=spec.fim if spec else False,
        )

    def tokenize(self, text: str) -> list[int]:
        if self._llm is None:
            raise BackendError("no model loaded")
        tokens: list[int] = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        return tokens

    def _plain_tokens(self, text: str) -> list[int]:
        """`text` as tokens to append after a prompt (no BOS, special tokens as text)."""
        tokens: list[int] = self._llm.tokenize(text.encode("utf-8"), add_bos=False,
                                               special=False)
        return tokens

    def _fitted(self, tokens: list[int], room_after: int) -> list[int]:
        """The prompt's tokens cut so `room_after` more fit the context: the end of the
        prompt (the text right before the cursor) and the BOS are kept."""
        room = self._llm.n_ctx() - room_after
        if len(tokens) > room:
            return tokens[:1] + tokens[len(tokens) - room + 1 :]
        return tokens

    def _prefill(self, tokens: list[int], request: GenerationRequest | ScoreRequest) -> int:
        """Evaluate all but the last prompt token in chunks, checking the cancel flag
        between chunks, so a superseded request (or the warm-up of a file) stops within
        one chunk instead of finishing a prefill of thousands of tokens. The KV cache of
        the prefix shared with the previous prompt is kept. Returns how many tokens were
        already cached, or -1 when stopped."""
        llm = self._llm
        target = tokens[:-1]
        evaluated = [int(token) for token in llm.input_ids[: llm.n_tokens]]
        keep = common_prefix_length(target, evaluated)
        if keep < llm.n_tokens:
            llm.n_tokens = keep  # eval() drops the KV cache past n_tokens first
        for start in range(keep, len(target), PREFILL_CHUNK):
            if request.should_stop():
                return -1
            llm.eval(target[start : start + PREFILL_CHUNK])
        return keep

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        llm = self._llm
        if llm is None:
            raise BackendError("no model loaded")
        tokens = self._fitted(self.tokenize(request.prompt), request.max_tokens)
        started = time.perf_counter()
        cached = self._prefill(tokens, request)
        if cached < 0:  # cancelled (or past the deadline) during the prefill
            yield Chunk(text="", tokens=0, finish_reason=stop_reason(request))
            return
        self._last_tokens = list(tokens)
        eos = llm.token_eos()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        first = True
        finish = "length"
        generator = self._tokens(tokens, request)
        for produced, token in enumerate(generator, start=1):
            if token == eos:
                finish = "stop"
                break
            self._last_tokens.append(token)
            text = decoder.decode(llm.detokenize([token], special=False))
            chunk = Chunk(text=text)
            if first:
                chunk.prompt_tokens = len(tokens)
                chunk.cached_tokens = cached
                chunk.prefill_ms = (time.perf_counter() - started) * 1000
                first = False
            yield chunk
            if produced >= request.max_tokens:
                break
            if request.should_stop():
                finish = stop_reason(request)
                break
        yield Chunk(text=decoder.decode(b"", final=True), tokens=0, finish_reason=finish)

    def _plain(self, tokens: list[int]) -> Iterator[int]:
        generated: Iterator[int] = self._llm.generate(tokens, temp=0.0, top_k=1,
                                                      repeat_penalty=1.0, reset=True)
        return generated

    def vocabulary(self) -> Vocabulary:
        """Each token's text (made once per model: ~0.1 s for 49k tokens)."""
        if self._vocab is None:
            llm = self._llm
            self._vocab = Vocabulary([
                llm.detokenize([token], special=False).decode("utf-8", "replace")
                for token in range(int(llm.n_vocab()))])
        return self._vocab

    def _steered(self, tokens: list[int], constraint: NameConstraint, limit: int,
                 so_far: str = "", lookup: bool = True) -> Iterator[int]:
        """Greedy tokens after `tokens`, the names after known receivers kept to those
        that exist: llama.cpp's own loop (prompt lookup where on and `lookup`) while the
        steps are free, one masked step at a time where `constraint` applies to the text
        decoded so far (`so_far`: what came before `tokens`' end in this answer), then the
        own loop again from there (its prefix reuse keeps the KV state). Most steps are
        free: a masked one costs a logits copy and a mask, a free one only the check."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text, produced = so_far, list(tokens)
        free: Iterator[int] | None = None
        while True:
            mask = constraint.mask(text)
            if mask is None:
                if free is None:
                    free = self._unguided(produced, limit - (len(produced) - len(tokens)),
                                          lookup)
                token = next(free, None)
                if token is None:
                    return
            else:
                free = None  # closed: its next token would not be masked
                token = self._masked(produced, mask)
            produced.append(token)
            yield token
            text += decoder.decode(self._llm.detokenize([token], special=False))

    def _masked(self, tokens: list[int], mask: Any) -> int:
        """The likeliest token after `tokens` that `mask` allows (the first of equal
        logits, as llama.cpp's greedy sampler), all of `tokens` evaluated after it."""
        llm = self._llm
        evaluated = [int(token) for token in llm.input_ids[: llm.n_tokens]]
        keep = min(common_prefix_length(tokens, evaluated), len(tokens) - 1)
        llm.n_tokens = keep
        if keep < len(tokens) - 1:
            llm.eval(tokens[keep:-1])
        logits = self.batch_logits().decode(tokens[-1:], keep=1)[0]
        return int(np.argmax(apply(mask, logits)))

    def lookup_decoder(self) -> Any:
        """The prompt-lookup decoder for the loaded model (made on first use, and again
        when the draft length changed)."""
        from companion.backends.llamacpp_lookup import LookupDecoder

        decoder = self._decoder
        if decoder is None or decoder.settings != self.lookup:
            if decoder is not None:
                decoder.close()
            self._decoder = None
            self._decoder = decoder = LookupDecoder(self._llm, self.lookup)
        return decoder

    def batch_logits(self) -> Any:
        from companion.backends.llamacpp_scoring import BatchLogits

        if self._logits is None:
            self._logits = BatchLogits(self._llm)
        return self._logits

    def _branch(self, tokens: list[int], rank: int) -> int | None:
        """The `rank`-th likeliest token after the whole prompt (all but its last token
        evaluated); the last prompt token stays evaluated."""
        from companion.backends.llamacpp_scoring import ranked_token

        logits = self.batch_logits().decode(tokens[-1:], keep=1)
        return ranked_token(logits[0], rank, exclude={self._llm.token_eos()})

    def score(self, request: ScoreRequest) -> list[ContinuationScore]:
        """Each continuation's log-probability after the prompt, and the follow text's
        after prompt + continuation: one batch per continuation, after the prompt's
        (cached) prefill. Stops between continuations when cancelled or past the
        deadline, returning the scores it has."""
        from companion.backends.llamacpp_scoring import token_logprobs

        if self._llm is None:
            raise BackendError("no model loaded")
        pieces = [self._plain_tokens(text)[:SCORE_CONTINUATION_TOKENS]
                  for text in request.continuations]
        follow = self._plain_tokens(request.follow)[:SCORE_FOLLOW_TOKENS] if request.follow \
            else []
        longest = max((len(piece) for piece in pieces), default=0) + len(follow) + 1
        tokens = self._fitted(self.tokenize(request.prompt), longest)
        if self._prefill(tokens, request) < 0:
            return []
        scores: list[ContinuationScore] = []
        for piece in pieces:
            if request.should_stop():
                break
            targets = [*piece, *follow]
            if not targets:
                scores.append(ContinuationScore(0.0, 0))
                continue
            logits = self.batch_logits().decode([tokens[-1], *targets[:-1]])
            logprobs = token_logprobs(logits, targets)
            scores.append(ContinuationScore(
                logprob=float(logprobs[: len(piece)].sum()), tokens=len(piece),
                follow_logprob=float(logprobs[len(piece) :].sum()), follow_tokens=len(follow)))
        return scores

    def _tokens(self, tokens: list[int], request: GenerationRequest) -> Iterator[int]:
        """Greedy tokens after `tokens` (all but the last evaluated): from the request's
        `first_token_rank`-th likeliest first token when it asks for one, with the names
        after known receivers kept to those that exist when it sends them (`_steered`),
        drafted by prompt lookup when that is on, else plain decoding."""
        table = NameTable.of(request.names) if request.temperature <= 0 else None
        constraint = NameConstraint(table, self.vocabulary()) if table is not None else None
        lookup = request.temperature <= 0
        so_far = ""
        limit = request.max_tokens
        if request.first_token_rank > 0:
            first = self._branch(tokens, request.first_token_rank)
            if first is None:
                return
            yield first
            tokens, limit, lookup = [*tokens, first], limit - 1, False
            so_far = self._llm.detokenize([first], special=False).decode("utf-8", "replace")
        if constraint is not None:
            yield from self._steered(tokens, constraint, limit, so_far, lookup)
        else:
            yield from self._unguided(tokens, limit, lookup)

    def _unguided(self, tokens: list[int], limit: int, lookup: bool) -> Iterator[int]:
        """Greedy tokens after `tokens` (all but the last evaluated), drafted by prompt
        lookup when that is on and `lookup`, else (and after any failure in it) plain."""
        if not self.lookup.enabled or not lookup:
            yield from self._plain(tokens)
            return
        produced: list[int] = []
        try:
            for token in self.lookup_decoder().tokens(tokens, limit):
                produced.append(token)
                yield token
            return
        except Exception as error:  # a bug or a refused batch: this request goes on plain
            log.warning("prompt lookup failed after %d tokens, decoding plainly: %s",
                        len(produced), error)
        yield from self._plain(tokens + produced)
