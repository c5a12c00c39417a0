"""The adaptive debounce: no wait for slow typists or explicit requests, a short one
for keys that arrive faster than the engine answers."""

from __future__ import annotations

from companion.engine.debounce import MAX_DELAY_S, PAUSE_S, Debounce


def test_no_wait_before_anything_is_known() -> None:
    debounce = Debounce()
    assert debounce.delay("a", now=10.0) == 0.0
    assert debounce.delay("a", now=10.05) == 0.0  # no latency measured yet


def test_fast_typing_against_a_slow_engine_waits_a_little_more_than_the_key_gap() -> None:
    debounce = Debounce()
    debounce.observe_latency(0.4)
    now = 0.0
    waits = []
    for _ in range(10):
        now += 0.05
        waits.append(debounce.delay("a", now=now))
    assert waits[0] == 0.0
    assert 0.05 < waits[-1] <= MAX_DELAY_S
    assert abs(waits[-1] - 0.075) < 1e-6


def test_typing_slower_than_the_engine_answers_never_waits() -> None:
    debounce = Debounce()
    debounce.observe_latency(0.08)
    now = 0.0
    for _ in range(10):
        now += 0.2
        assert debounce.delay("a", now=now) == 0.0


def test_a_pause_does_not_count_as_rhythm_and_documents_are_separate() -> None:
    debounce = Debounce()
    debounce.observe_latency(5.0)
    debounce.delay("a", now=0.0)
    assert debounce.delay("a", now=PAUSE_S + 1) == 0.0  # only a pause so far
    assert debounce.delay("b", now=PAUSE_S + 1.01) == 0.0  # another document: no rhythm
    assert debounce.delay("a", now=PAUSE_S + 1.2) > 0.0
    debounce.forget("a")
    assert debounce.delay("a", now=PAUSE_S + 1.3) == 0.0


def test_the_wait_is_capped_and_latency_is_a_moving_average() -> None:
    debounce = Debounce()
    debounce.observe_latency(10.0)
    debounce.observe_latency(0.0)
    assert debounce.latency is not None and 6.9 < debounce.latency < 7.1
    debounce.delay("a", now=0.0)
    assert debounce.delay("a", now=0.9) == MAX_DELAY_S


def test_no_wait_when_the_previous_answer_came_before_this_key() -> None:
    debounce = Debounce()
    debounce.observe_latency(5.0)
    debounce.delay("a", now=0.0)
    assert debounce.delay("a", now=0.05, overtaken=False) == 0.0
    assert debounce.delay("a", now=0.10, overtaken=True) > 0.0
