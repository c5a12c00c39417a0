"""Prompt-lookup (n-gram) speculative decoding for the llama.cpp backend, greedy only.

Code repeats itself, so the tokens that follow the longest recent n-gram match of the
text's last tokens (prompt + what was generated) are a cheap draft. The pending token and
the draft are decoded in one `llama_decode` batch through llama-cpp-python's low-level
API, with logits requested only for those positions (never `logits_all`, which made
`LlamaPromptLookupDecoding` slower here); the prefix of the draft that greedy decoding
agrees with is kept, the rejected KV positions are removed. Output is the same as plain
greedy decoding up to floating-point ties (a batch of k tokens and k single-token decodes
take different kernels).

`find_draft` is pure (numpy only). `LookupDecoder` runs in the engine host, next to a
loaded `llama_cpp.Llama`, and keeps that object's `input_ids`/`n_tokens` true, so the
backend's prefix reuse and the plain path work on after it.

Environment (read when the backend is constructed): `COMPANION_PROMPT_LOOKUP` 0/1,
`COMPANION_PROMPT_LOOKUP_DRAFT` (tokens per draft), `COMPANION_PROMPT_LOOKUP_NGRAM`
(shortest n-gram that may draft).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_ENABLED = False  # measured: see docs/architecture.md and `companion bench decode`
DEFAULT_DRAFT = 4
DEFAULT_MIN_NGRAM = 2
DEFAULT_ADAPTIVE = False
MAX_NGRAM = 4

TokenArray = npt.NDArray[np.int32]


@dataclass(frozen=True)
class LookupSettings:
    enabled: bool = DEFAULT_ENABLED
    draft: int = DEFAULT_DRAFT  # most tokens drafted per step
    min_ngram: int = DEFAULT_MIN_NGRAM  # shortest suffix match that may draft
    max_ngram: int = MAX_NGRAM  # longest suffix match looked for
    # Adaptive draft length: +2 after a draft that was accepted whole, else what was
    # accepted + 1 (a draft token costs ~half a plain decode here: see bench decode).
    adaptive: bool = DEFAULT_ADAPTIVE

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> LookupSettings:
        env = os.environ if environ is None else environ
        return cls(
            enabled=_flag(env.get("COMPANION_PROMPT_LOOKUP"), DEFAULT_ENABLED),
            draft=max(1, _int(env.get("COMPANION_PROMPT_LOOKUP_DRAFT"), DEFAULT_DRAFT)),
            min_ngram=min(MAX_NGRAM, max(1, _int(env.get("COMPANION_PROMPT_LOOKUP_NGRAM"),
                                                  DEFAULT_MIN_NGRAM))),
            adaptive=_flag(env.get("COMPANION_PROMPT_LOOKUP_ADAPTIVE"), DEFAULT_ADAPTIVE),
        )


def _flag(value: str | None, default: bool) -> bool:
    cleaned = (value or "").strip().lower()
    return default if not cleaned else cleaned not in ("0", "false", "off", "no")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def find_draft(history: TokenArray, end: int, max_draft: int,
               min_ngram: int = DEFAULT_MIN_NGRAM, max_ngram: int = MAX_NGRAM) -> list[int]:
    """Up to `max_draft` tokens that followed the most recent earlier occurrence of the
    longest suffix (`min_ngram`..`max_ngram` tokens) of `history[:end]`; [] when no
    suffix of at least `min_ngram` tokens occurred before."""
    if end < 2 or max_draft <= 0 or min_ngram < 1:
        return []
    text = history[:end]
    # j: where an earlier occurrence of the suffix ends (j <= end - 2, so text[j + 1] is
    # there to draft from).
    matches = np.flatnonzero(text[: end - 1] == text[end - 1])
    if matches.size == 0:
        return []
    length = 1
    while length < max_ngram and length < end - 1:
        longer = matches[matches >= length]
        longer = longer[text[longer - length] == text[end - 1 - length]]
        if longer.size == 0:
            break
        matches, length = longer, length + 1
    if length < min_ngram:
        return []
    start = int(matches[-1]) + 1  # the most recent of the longest matches
    draft: list[int] = text[start : start + max_draft].tolist()
    return draft


@dataclass
class LookupStats:
    """Counts over a decoder's life (the bench reads differences)."""

    steps: int = 0  # llama_decode calls
    drafted_steps: int = 0  # steps that carried a draft
    drafted: int = 0  # draft tokens verified
    accepted: int = 0  # draft tokens greedy decoding agreed with
    emitted: int = 0  # tokens produced
    # batch size → [decodes, seconds in llama_decode + reading the logits]: the cost model
    batch: dict[int, list[float]] = field(default_factory=dict)


class LookupDecoder:
    """Greedy decoding with n-gram drafts, on a loaded `llama_cpp.Llama`."""

    def __init__(self, llm: Any, settings: LookupSettings) -> None:
        import llama_cpp

        self._api: Any = llama_cpp
        self._llm = llm
        self.settings = settings
        self.stats = LookupStats()
        self._ctx = llm.ctx
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        if self._memory is None:
            raise RuntimeError("this llama.cpp context has no memory to remove drafts from")
        self._n_vocab = int(llm.n_vocab())
        self._n_ctx = int(llm.n_ctx())
        self._capacity = settings.draft + 1
        self._batch: Any = llama_cpp.llama_batch_init(self._capacity, 0, 1)

    def close(self) -> None:
        if self._batch is not None:
            self._api.llama_batch_free(self._batch)
            self._batch = None

    def _argmax(self, index: int) -> int:
        logits = self._api.llama_get_logits_ith(self._ctx, index)
        return int(np.ctypeslib.as_array(logits, shape=(self._n_vocab,)).argmax())

    def _decode(self, tokens: list[int], n_past: int) -> None:
        """One batch: `tokens` at positions n_past…, logits for each of them."""
        batch = self._batch
        if batch is None:
            raise RuntimeError("the lookup decoder is closed")
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = n_past + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1
        code = self._api.llama_decode(self._ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")

    def tokens(self, prompt: list[int], limit: int) -> Iterator[int]:
        """Greedy tokens after `prompt`, at most `limit`. The model must hold the KV
        state of `prompt[:-1]` (the backend's prefill) and nothing past it."""
        llm = self._llm
        if len(prompt) < 1 or llm.n_tokens != len(prompt) - 1:
            raise RuntimeError(f"lookup expects {len(prompt) - 1} evaluated tokens, "
                               f"the model holds {llm.n_tokens}")
        # The plain path may have left the last prompt token's KV entry past n_tokens.
        self._api.llama_memory_seq_rm(self._memory, 0, int(llm.n_tokens), -1)
        settings = self.settings
        history: TokenArray = np.empty(len(prompt) + limit + self._capacity, dtype=np.int32)
        history[: len(prompt)] = prompt
        end = len(prompt)
        pending = int(prompt[-1])
        produced = 0
        length = settings.draft
        stats = self.stats
        while produced < limit:
            n_past = int(llm.n_tokens)
            room = min(length, limit - produced - 1, self._n_ctx - n_past - 1)
            draft = find_draft(history, end, room, settings.min_ngram,
                               settings.max_ngram) if room > 0 else []
            started = time.perf_counter()
            self._decode([pending, *draft], n_past)
            out: list[int] = []
            for i in range(len(draft) + 1):
                token = self._argmax(i)
                out.append(token)
                if i == len(draft) or token != draft[i]:
                    break
            cost = stats.batch.setdefault(len(draft) + 1, [0, 0.0])
            cost[0] += 1
            cost[1] += time.perf_counter() - started
            accepted = len(out) - 1
            if settings.adaptive and draft:
                length = (min(settings.draft, length + 2) if accepted == len(draft)
                          else accepted + 1)
            kept = n_past + 1 + accepted
            if accepted < len(draft):
                self._api.llama_memory_seq_rm(self._memory, 0, kept, -1)
            llm.input_ids[n_past:kept] = [pending, *draft[:accepted]]
            llm.n_tokens = kept
            if hasattr(llm, "_requires_eval"):
                llm._requires_eval = True  # the context's last logits may be a rejected row
            history[end : end + len(out)] = out
            end += len(out)
            pending = out[-1]
            stats.steps += 1
            stats.drafted_steps += 1 if draft else 0
            stats.drafted += len(draft)
            stats.accepted += accepted
            for token in out:
                produced += 1
                stats.emitted += 1
                yield token
