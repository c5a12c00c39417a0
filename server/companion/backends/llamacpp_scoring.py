"""Logits for the llama.cpp backend's candidate reranking: the likeliest first tokens
after a prompt (to branch from) and the log-probabilities of continuations.

Both decode a few tokens in one `llama_decode` batch through llama-cpp-python's low-level
API, with logits for every position of the batch (llama-cpp-python's `eval` keeps none
unless the model was loaded with `logits_all`, which slows every request down). The
prompt's KV state (all but its last token, the backend's prefill) is reused; what the
batch adds is removed again, so `input_ids`/`n_tokens` stay true for the prefix reuse of
the next request.

`token_logprobs` and `ranked_token` are pure (numpy only).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def token_logprobs(logits: FloatArray, targets: list[int]) -> npt.NDArray[np.float64]:
    """log P(targets[i] | row i of `logits`) for each row (natural log)."""
    if len(targets) == 0:
        return np.zeros(0)
    rows = logits[: len(targets)].astype(np.float64)
    peak = rows.max(axis=1, keepdims=True)
    normalizer = np.log(np.exp(rows - peak).sum(axis=1)) + peak[:, 0]
    picked = rows[np.arange(len(targets)), np.asarray(targets, dtype=np.int64)]
    result: npt.NDArray[np.float64] = picked - normalizer
    return result


def ranked_token(logits: FloatArray, rank: int, exclude: Collection[int] = ()) -> int | None:
    """The `rank`-th likeliest token of one row of logits (0: the likeliest), skipping
    `exclude` (end of text); None when the vocabulary has no such rank."""
    wanted = rank + 1 + len(exclude)
    if wanted > logits.shape[0]:
        wanted = logits.shape[0]
    top = np.argpartition(-logits, wanted - 1)[:wanted]
    ordered = top[np.argsort(-logits[top], kind="stable")]
    kept = [int(token) for token in ordered if int(token) not in exclude]
    return kept[rank] if rank < len(kept) else None


class BatchLogits:
    """One-batch decodes with every row's logits, on a loaded `llama_cpp.Llama`."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp

        self._api: Any = llama_cpp
        self._llm = llm
        self._ctx = llm.ctx
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        if self._memory is None:
            raise RuntimeError("this llama.cpp context has no memory to remove tokens from")
        self._n_vocab = int(llm.n_vocab())
        self._chunk = max(1, int(llm.n_batch))
        self._batch: Any = llama_cpp.llama_batch_init(self._chunk, 0, 1)

    def close(self) -> None:
        if self._batch is not None:
            self._api.llama_batch_free(self._batch)
            self._batch = None

    def decode(self, tokens: list[int], keep: int = 0) -> FloatArray:
        """The logits after each of `tokens` (one row each), decoded after the model's
        evaluated tokens. The first `keep` of them stay evaluated; the rest are removed
        from the KV cache again."""
        llm, api = self._llm, self._api
        if self._batch is None:
            raise RuntimeError("the scoring batch is closed")
        if int(llm.n_tokens) + len(tokens) > int(llm.n_ctx()):
            raise RuntimeError("the continuation does not fit the context")
        n_past = int(llm.n_tokens)
        api.llama_memory_seq_rm(self._memory, 0, n_past, -1)
        rows: FloatArray = np.empty((len(tokens), self._n_vocab), dtype=np.float32)
        decoded = False
        try:
            for start in range(0, len(tokens), self._chunk):
                part = tokens[start : start + self._chunk]
                batch = self._batch
                batch.n_tokens = len(part)
                for i, token in enumerate(part):
                    batch.token[i] = token
                    batch.pos[i] = n_past + start + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 0
                    batch.logits[i] = 1
                code = api.llama_decode(self._ctx, batch)
                if code != 0:
                    raise RuntimeError(f"llama_decode returned {code}")
                for i in range(len(part)):
                    row = api.llama_get_logits_ith(self._ctx, i)
                    rows[start + i] = np.ctypeslib.as_array(row, shape=(self._n_vocab,))
            decoded = True
        finally:
            kept = n_past + (min(keep, len(tokens)) if decoded else 0)
            api.llama_memory_seq_rm(self._memory, 0, kept, -1)
            llm.input_ids[n_past:kept] = tokens[: kept - n_past]
            llm.n_tokens = kept
            if hasattr(llm, "_requires_eval"):
                llm._requires_eval = True  # the context's last logits are not the state's
        return rows
