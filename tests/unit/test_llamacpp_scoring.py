"""The llama.cpp backend's reranking support on the embedded model (in process): scores
equal to a reference computed with `logits_all`, the first-token branches, and a KV state
that prefix reuse and plain decoding still trust afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from companion.backends.base import CancelFlag, GenerationRequest, ScoreRequest
from companion.models.resolve import resolve

llama_cpp = pytest.importorskip("llama_cpp")

from companion.backends.llamacpp import LlamaCppBackend  # noqa: E402
from companion.backends.llamacpp_scoring import ranked_token, token_logprobs  # noqa: E402

PROMPT = "import time\n\n\ndef wait(timeout):\n   "
CANDIDATES = [" endtime = time.time() + timeout", " start = time.time()"]
FOLLOW = "\n    while time.time() < endtime:"


@pytest.fixture(scope="module")
def backend() -> Iterator[LlamaCppBackend]:
    loaded = LlamaCppBackend()
    loaded.load(resolve("", 2048))
    yield loaded
    loaded.unload()


def generate(backend: LlamaCppBackend, rank: int = 0, prompt: str = PROMPT) -> tuple[str, int]:
    chunks = list(backend.stream(GenerationRequest(prompt=prompt, max_tokens=8,
                                                   first_token_rank=rank)))
    return "".join(chunk.text for chunk in chunks), chunks[0].cached_tokens


def test_token_logprobs_is_a_log_softmax_pick() -> None:
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0]], dtype=np.float32)
    assert token_logprobs(logits, [1, 0]) == pytest.approx([np.log(0.5), np.log(0.75)])
    assert token_logprobs(logits, []).size == 0


def test_ranked_token_counts_from_the_likeliest_and_skips_end_of_text() -> None:
    logits = np.array([0.1, 3.0, 2.0, 5.0], dtype=np.float32)
    assert [ranked_token(logits, rank) for rank in range(5)] == [3, 1, 2, 0, None]
    assert ranked_token(logits, 0, exclude={3}) == 1


def test_scores_match_a_full_evaluation_with_logits_all(backend: LlamaCppBackend) -> None:
    scores = backend.score(ScoreRequest(PROMPT, CANDIDATES, FOLLOW))
    assert len(scores) == 2
    llm = backend._llm
    reference = llama_cpp.Llama(model_path=llm.model_path, n_ctx=512, logits_all=True,
                                verbose=False, n_threads=1)
    try:
        prompt = reference.tokenize(PROMPT.encode(), add_bos=True, special=True)
        follow = reference.tokenize(FOLLOW.encode(), add_bos=False, special=False)
        for text, score in zip(CANDIDATES, scores, strict=True):
            piece = reference.tokenize(text.encode(), add_bos=False, special=False)
            tokens = [*prompt, *piece, *follow]
            reference.reset()
            reference.eval(tokens)
            rows = reference.scores[len(prompt) - 1 : len(tokens) - 1]
            logprobs = token_logprobs(rows, tokens[len(prompt):])
            assert score.tokens == len(piece) and score.follow_tokens == len(follow)
            assert score.logprob == pytest.approx(logprobs[: len(piece)].sum(), abs=0.05)
            assert score.follow_logprob == pytest.approx(logprobs[len(piece):].sum(), abs=0.05)
    finally:
        reference.close()
    # The line that defines what the next line uses makes that line far likelier.
    assert scores[0].follow_logprob > scores[1].follow_logprob + 3


def test_branches_start_from_other_first_tokens_and_the_state_stays_true(
        backend: LlamaCppBackend) -> None:
    greedy, _ = generate(backend)
    first, cached = generate(backend, rank=1)
    second, _ = generate(backend, rank=2)
    assert len({greedy, first, second}) == 3
    assert cached >= len(backend.tokenize(PROMPT)) - 2  # the prompt's KV cache was reused
    backend.score(ScoreRequest(PROMPT, CANDIDATES, FOLLOW))
    again, cached = generate(backend)
    assert again == greedy and cached >= len(backend.tokenize(PROMPT)) - 2
    other = PROMPT.replace("wait", "pause")
    assert generate(backend, prompt=other)[0]  # a new prompt after scoring decodes fine


def test_a_cancelled_score_returns_what_it_has(backend: LlamaCppBackend) -> None:
    flag = CancelFlag()
    flag.cancel()
    assert backend.score(ScoreRequest(PROMPT, CANDIDATES, FOLLOW, cancel=flag)) == []
