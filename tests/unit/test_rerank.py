"""Candidate reranking (engine/rerank.py): the suffix line it scores against, the score
and the choice (pure), and the protocol's edge cases through the engine with a backend
that answers per first-token rank and scores from a table (the real model: the llama.cpp
scoring tests and tests/e2e/test_rerank.py; the gain: `bench quality`)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from companion.backends.base import (
    BackendInfo,
    CancelFlag,
    Capabilities,
    Chunk,
    ContinuationScore,
    GenerationRequest,
    ModelSpec,
    ScoreRequest,
)
from companion.config import Settings, parse_settings
from companion.engine import rerank
from companion.engine.completer import Engine, EngineState
from companion.engine.debounce import PAUSE_S, Debounce
from companion.engine.rerank import Candidate, Scored
from companion.host import protocol
from companion.host.prefix import PrefixTracking

DOCUMENT = ("import time\n\n\ndef wait(timeout):\n    \n"
            "    while time.time() < endtime:\n        time.sleep(0.1)\n")
LINE, COLUMN = 4, 4
FOLLOW = "\n    while time.time() < endtime:"
# What the model writes from its n-th likeliest first token (healed: a leading space).
ANSWERS = {
    0: " start = time.time()\n",
    1: " endtime = time.time() + timeout\n",
    2: "\n\n",  # a first token the healed prompt does not allow: dropped
    3: " start = time.time()\n",  # the greedy answer again: dropped
    4: " time.sleep(timeout)\n",
    5: " deadline = time.monotonic() + timeout\n",
    6: " return None\n",
}
# Mean log-probabilities (candidate, suffix line) per continuation scored.
SCORES = {
    " start = time.time()": (-0.5, -2.0),
    " endtime = time.time() + timeout": (-0.9, -0.6),
    " time.sleep(timeout)": (-0.4, -2.5),
    " deadline = time.monotonic() + timeout": (-0.8, -2.2),
}


class RankingBackend:
    """Answers ANSWERS[first_token_rank]; scores continuations from SCORES."""

    name = "ranking"
    capabilities = Capabilities(rerank=True)

    def __init__(self, delay_s: float = 0.0) -> None:
        self.requests: list[GenerationRequest] = []
        self.scored: list[ScoreRequest] = []
        self.delay_s = delay_s
        self.on_score: Callable[[ScoreRequest], list[ContinuationScore]] | None = None
        self.on_branch: Callable[[GenerationRequest], None] | None = None

    def load(self, model: ModelSpec) -> None: ...

    def unload(self) -> None: ...

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, "m", "cpu", 0.0, 2048)

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        self.requests.append(request)
        if request.first_token_rank and self.on_branch is not None:
            self.on_branch(request)
        time.sleep(self.delay_s)
        text = ANSWERS.get(request.first_token_rank, "")
        first, rest = text[:1], text[1:]
        yield Chunk(first, prompt_tokens=10, prefill_ms=1.0)
        if request.should_stop():
            yield Chunk("", tokens=0, finish_reason="cancelled")
            return
        yield Chunk(rest)
        yield Chunk("", tokens=0, finish_reason="stop")

    def score(self, request: ScoreRequest) -> list[ContinuationScore]:
        self.scored.append(request)
        if self.on_score is not None:
            return self.on_score(request)
        return [table_score(text) for text in request.continuations]


def table_score(text: str) -> ContinuationScore:
    mean, follow = SCORES[text]
    return ContinuationScore(mean * 4, 4, follow * 6, 6)


class PlainBackend(RankingBackend):
    """The same answers from an engine that cannot rerank (openai, mlx, transformers)."""

    capabilities = Capabilities()


def engine_with(backend: RankingBackend, **settings: object) -> Engine:
    # Reranking alone: the example below would also start on `endtime =`
    # (neededName, tested in test_suffix_names.py) and the fake backend ignores prompts.
    options = {"context_tokens": 1536, "speculate": False, "rerank": True,
               "needed_name": False, **settings}
    engine = Engine(Settings(**options))  # type: ignore[arg-type]
    spec = ModelSpec(name="m", path="m.gguf", family="smollm2", context_tokens=1536)
    engine.current = EngineState("ready", PrefixTracking(backend), spec, "test", [])
    return engine


async def complete(engine: Engine, automatic: bool = False, document: str = DOCUMENT,
                   line: int = LINE, column: int = COLUMN) -> str:
    try:
        suggestion = await engine.complete(document, line, column, "file:///w.py",
                                           automatic=automatic)
    finally:
        engine.shutdown()
    assert suggestion.source == "model"
    return suggestion.text


# -- pure ------------------------------------------------------------------------------------


def test_the_follow_text_is_the_suffix_through_its_next_non_blank_line() -> None:
    assert rerank.follow_text("\n    x = 1\n    y = 2\n") == "\n    x = 1"
    assert rerank.follow_text(")\n\n   \n    return total\n") == ")\n\n   \n    return total"
    assert rerank.follow_text("\n\n\n") == ""  # nothing below
    assert rerank.follow_text(")") == ""  # the last line
    assert rerank.follow_text("\n" + "x" * 500, limit=40) == "\n" + "x" * 39


def test_the_budget_is_for_invocations_and_pauses_never_for_a_keystroke() -> None:
    on = Settings(rerank=True, inline_deadline_ms=2500)
    assert rerank.budget_ms(on, automatic=False, paused=False) == 2500
    assert rerank.budget_ms(on, automatic=True, paused=True) == rerank.PAUSE_BUDGET_MS
    assert rerank.budget_ms(on, automatic=True, paused=False) == 0
    assert rerank.budget_ms(Settings(), automatic=False, paused=False) == 0  # off: default
    short = Settings(rerank=True, inline_deadline_ms=400)
    assert rerank.budget_ms(short, automatic=True, paused=True) == 400


def test_the_setting_is_declared_like_the_others() -> None:
    settings, warnings = parse_settings({"rerank": True})
    assert settings.rerank and not warnings
    assert not Settings().rerank


def test_the_value_weighs_the_candidate_the_next_line_and_invented_names() -> None:
    score = ContinuationScore(-2.0, 4, -3.0, 6)
    assert rerank.value(score) == pytest.approx(-0.5 - 0.5)
    assert rerank.value(score, undefined=True) == pytest.approx(-1.0 - rerank.UNDEFINED_PENALTY)
    assert rerank.value(ContinuationScore(0.0, 0)) == 0.0  # nothing to average


def test_the_greedy_candidate_stays_unless_beaten_by_the_margin() -> None:
    greedy = Scored(Candidate("a", 0), ContinuationScore(-1.0, 1, -1.0, 1))
    close = Scored(Candidate("b", 1), ContinuationScore(-0.99, 1, -1.0, 1))
    clear = Scored(Candidate("c", 2), ContinuationScore(-0.5, 1, -1.0, 1))
    assert rerank.choose([greedy, close]) is greedy
    assert rerank.choose([greedy, close, clear]) is clear
    invented = Scored(Candidate("d", 3, undefined=True), ContinuationScore(-0.5, 1, -1.0, 1))
    assert rerank.choose([greedy, invented]) is greedy


def test_candidates_are_distinct_non_empty_and_stop_at_the_deadline() -> None:
    asked: list[int] = []

    def alternative(rank: int, until: float) -> Candidate | None:
        asked.append(rank)
        return {1: Candidate("a", 1), 2: Candidate("", 2), 3: None,
                4: Candidate("g", 4)}.get(rank, Candidate(f"x{rank}", rank))

    found = rerank.candidates(Candidate("g"), alternative, time.monotonic() + 60, CancelFlag())
    assert [item.text for item in found] == ["g", "a", "x5", "x6"]
    assert asked == [1, 2, 3, 4, 5, 6]
    asked.clear()
    assert rerank.candidates(Candidate("g"), alternative, time.monotonic() - 1,
                             CancelFlag()) == [Candidate("g")]
    assert asked == []


def test_a_pause_is_a_request_without_an_edit_after_pause_s() -> None:
    debounce = Debounce()
    assert not debounce.paused("u", "text", now=0.0)  # the first request: often a new file
    debounce.delay("u", now=0.0)
    assert not debounce.paused("u", "text!", now=5.0)  # a keystroke, however slow
    debounce.delay("u", now=5.0)
    assert not debounce.paused("u", "text!", now=5.0 + PAUSE_S / 2)  # too soon
    debounce.delay("u", now=5.0 + PAUSE_S / 2)
    assert debounce.paused("u", "text!", now=7.0 + PAUSE_S)


def test_the_score_message_crosses_the_pipe_without_its_flag() -> None:
    request = ScoreRequest("p", ["a", "b"], "\nc", deadline=100.0)
    request.cancel.cancel()
    back = protocol.unpack_score(protocol.pack_score(request, now=90.0), now=1000.0)
    assert (back.prompt, back.continuations, back.follow, back.deadline) == (
        "p", ["a", "b"], "\nc", 1010.0)
    assert not back.cancel.cancelled
    data = protocol.pack(GenerationRequest("p", first_token_rank=3), now=0.0)
    assert protocol.unpack(data, now=0.0).first_token_rank == 3


class SilentHost:
    """A host that takes a Score and never answers (one batch on a very busy machine)."""

    def __init__(self) -> None:
        self.sent: list[object] = []
        self.killed: list[str] = []
        self.waiting: queue.Queue[object] = queue.Queue()

    def open_request(self) -> tuple[int, queue.Queue[object]]:
        return 7, self.waiting

    def close_request(self, request_id: int) -> None: ...

    def send(self, message: object) -> None:
        self.sent.append(message)

    def kill(self, reason: str) -> None:
        self.killed.append(reason)


def test_a_score_past_its_deadline_is_given_up_on_not_killed() -> None:
    from companion.engine.host_client import SCORE_GRACE_S, HostBackend

    host = SilentHost()
    loaded = protocol.Loaded(BackendInfo("llamacpp", "m", "cpu", 0.0, 2048),
                             Capabilities(rerank=True), 1.0, "")
    spec = ModelSpec(name="m", path="m.gguf", family="smollm2")
    backend = HostBackend(host, loaded, spec)  # type: ignore[arg-type]
    started = time.monotonic()
    assert backend.score(ScoreRequest("p", ["a"], "\nb", deadline=started + 0.1)) == []
    assert time.monotonic() - started < 0.1 + SCORE_GRACE_S + 0.5
    assert [type(message) for message in host.sent] == [protocol.Score, protocol.Cancel]
    assert not host.killed


# -- through the engine ------------------------------------------------------------------------


async def test_an_invoked_request_shows_the_candidate_that_fits_the_next_line() -> None:
    backend = RankingBackend()
    engine = engine_with(backend)
    metrics = engine.metrics
    assert await complete(engine) == "endtime = time.time() + timeout"
    ranks = [request.first_token_rank for request in backend.requests]
    assert ranks == [0, 1, 2, 3, 4, 5]  # 2 and 3 gave nothing new; 3 alternatives found
    greedy = backend.requests[0]
    for branch in backend.requests[1:]:
        assert branch.prompt == greedy.prompt and not branch.narrow_prompt
        assert branch.cancel is greedy.cancel
    [scored] = backend.scored
    assert scored.prompt == greedy.prompt and scored.follow == FOLLOW
    assert scored.continuations == [" start = time.time()", " endtime = time.time() + timeout",
                                    " time.sleep(timeout)",
                                    " deadline = time.monotonic() + timeout"]
    assert metrics.get("reranked") == 1 and metrics.get("rerankCandidates") == 4
    assert metrics.get("rerankChanged") == 1


async def test_a_typing_keystroke_never_reranks() -> None:
    backend = RankingBackend()
    assert await complete(engine_with(backend), automatic=True) == "start = time.time()"
    assert [request.first_token_rank for request in backend.requests] == [0]
    assert not backend.scored


async def test_an_automatic_request_after_a_pause_reranks() -> None:
    backend = RankingBackend()
    engine = engine_with(backend)
    engine.debounce.paused("file:///w.py", DOCUMENT, now=time.monotonic() - 2 * PAUSE_S)
    engine.debounce.delay("file:///w.py", now=time.monotonic() - 2 * PAUSE_S)
    assert await complete(engine, automatic=True) == "endtime = time.time() + timeout"


@pytest.mark.parametrize(("backend", "settings"), [
    (RankingBackend(), {"rerank": False}),  # the setting is off
    (PlainBackend(), {}),  # the engine cannot
])
async def test_off_or_unsupported_means_the_greedy_answer_alone(
        backend: RankingBackend, settings: dict[str, object]) -> None:
    backend.requests.clear()
    assert await complete(engine_with(backend, **settings)) == "start = time.time()"
    assert len(backend.requests) == 1 and not backend.scored


async def test_a_model_with_fim_or_no_line_below_is_not_reranked() -> None:
    backend = RankingBackend()
    engine = engine_with(backend)
    engine.current = EngineState("ready", PrefixTracking(backend), ModelSpec(
        name="m", path="m.gguf", family="qwen2.5-coder", fim=True, context_tokens=1536),
        "test", [])
    await complete(engine)
    last = RankingBackend()
    end = "import time\n\n\ndef wait(timeout):\n    "
    assert await complete(engine_with(last), document=end) == "start = time.time()"
    assert len(backend.requests) == 1 and len(last.requests) == 1


async def test_a_failing_or_short_score_keeps_the_greedy_answer() -> None:
    def fail(request: ScoreRequest) -> list[ContinuationScore]:
        raise RuntimeError("the engine cannot score today")

    def short(request: ScoreRequest) -> list[ContinuationScore]:  # stopped at the deadline
        return [table_score(text) for text in request.continuations[:2]]

    for answer in (fail, short):
        backend = RankingBackend()
        backend.on_score = answer
        engine = engine_with(backend)
        metrics = engine.metrics
        assert await complete(engine) == "start = time.time()"
        assert metrics.get("rerankGreedy") == 1 and metrics.get("reranked") == 0


async def test_when_the_budget_runs_out_the_greedy_answer_comes_in_time() -> None:
    backend = RankingBackend(delay_s=0.12)
    engine = engine_with(backend, inline_deadline_ms=200)
    started = time.perf_counter()
    assert await complete(engine) == "start = time.time()"
    assert time.perf_counter() - started < 0.6
    assert len(backend.requests) <= 2 and not backend.scored  # no time left to score


async def test_a_cancel_during_the_alternatives_stops_them() -> None:
    backend = RankingBackend()
    flag = CancelFlag()
    seen = threading.Event()

    def cancel(request: GenerationRequest) -> None:
        flag.cancel()
        seen.set()

    backend.on_branch = cancel
    engine = engine_with(backend)
    try:
        suggestion = await engine.complete(DOCUMENT, LINE, COLUMN, "file:///w.py", flag=flag)
    finally:
        engine.shutdown()
    assert seen.is_set()
    assert suggestion.text in ("", "start = time.time()")  # superseded, or the greedy one
    assert len(backend.requests) == 2 and not backend.scored
