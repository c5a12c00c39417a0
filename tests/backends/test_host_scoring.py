"""Reranking across the process boundary: a real engine host with the embedded model
says it can rerank, branches at the first token and scores continuations over the pipe
with the same numbers as in process, and a cancel stops a score."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from companion.backends.base import CancelFlag, GenerationRequest, ScoreRequest
from companion.engine.host_client import HostBackend, HostProcess
from companion.models.resolve import resolve

pytest.importorskip("llama_cpp")

PROMPT = "import time\n\n\ndef wait(timeout):\n   "
CANDIDATES = [" endtime = time.time() + timeout", " start = time.time()"]
FOLLOW = "\n    while time.time() < endtime:"


@pytest.fixture(scope="module")
def host_backend() -> Iterator[HostBackend]:
    exits: list[str] = []
    host = HostProcess(lambda _host, reason: exits.append(reason))
    host.start()
    try:
        spec = resolve("", 2048)
        yield HostBackend(host, host.load("llamacpp", spec), spec)
    finally:
        host.stop()
    assert not exits, exits


def text_of(backend: HostBackend, rank: int) -> str:
    request = GenerationRequest(prompt=PROMPT, max_tokens=6, first_token_rank=rank)
    return "".join(chunk.text for chunk in backend.stream(request))


def test_the_host_branches_and_scores_like_the_engine_in_process(
        host_backend: HostBackend) -> None:
    from companion.backends.llamacpp import LlamaCppBackend

    assert host_backend.capabilities.rerank
    greedy, other = text_of(host_backend, 0), text_of(host_backend, 1)
    assert greedy and other and greedy != other
    over_pipe = host_backend.score(ScoreRequest(PROMPT, CANDIDATES, FOLLOW))
    local = LlamaCppBackend()
    local.load(resolve("", 2048))
    try:
        in_process = local.score(ScoreRequest(PROMPT, CANDIDATES, FOLLOW))
        assert text_of(host_backend, 1) == "".join(chunk.text for chunk in local.stream(
            GenerationRequest(prompt=PROMPT, max_tokens=6, first_token_rank=1)))
    finally:
        local.unload()
    assert len(over_pipe) == 2
    for remote, here in zip(over_pipe, in_process, strict=True):
        assert remote.tokens == here.tokens and remote.follow_tokens == here.follow_tokens
        assert remote.logprob == pytest.approx(here.logprob, abs=0.05)
        assert remote.follow_logprob == pytest.approx(here.follow_logprob, abs=0.05)


def test_a_cancel_stops_a_score_between_continuations_and_the_host_serves_on(
        host_backend: HostBackend) -> None:
    flag = CancelFlag()
    many = [f" value_{i} = time.time() + {i} * timeout" for i in range(200)]
    timer = threading.Timer(0.3, flag.cancel)
    timer.start()
    try:
        scores = host_backend.score(ScoreRequest(PROMPT, many, FOLLOW, cancel=flag))
    finally:
        timer.cancel()
    assert flag.cancelled and len(scores) < len(many)
    assert text_of(host_backend, 0)
