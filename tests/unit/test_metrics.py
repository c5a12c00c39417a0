"""`engine.metrics.percentile`: nearest rank, the same answer on odd and even counts."""

from __future__ import annotations

import pytest

from companion.engine.metrics import LatencyWindow, percentile


def test_nothing_has_no_percentile() -> None:
    assert percentile([], 0.5) is None


@pytest.mark.parametrize(("values", "median"), [
    ([7], 7),
    ([100, 200], 100),  # even n: the lower middle value
    ([300, 100, 200], 200),  # odd n: the middle value, in any input order
    ([100, 200, 300, 400], 200),
    ([100, 200, 300, 400, 500], 300),
    ([100, 200, 300, 400, 500, 600], 300),
    (list(range(1, 101)), 50),
    (list(range(1, 102)), 51),
])
def test_the_median_is_the_ceil_half_nth_value(values: list[float], median: float) -> None:
    assert percentile(values, 0.5) == median


@pytest.mark.parametrize(("n", "share", "rank"), [
    (20, 0.95, 19),  # 0.95 * 20 is 19 exactly: not rounded up to 20 by float error
    (21, 0.95, 20),  # ceil(19.95)
    (100, 0.95, 95),
    (101, 0.95, 96),
    (10, 0.99, 10),
    (10, 0.0, 1),  # the lowest share still names a value: the smallest
    (10, 1.0, 10),
    (3, 0.1, 1),
])
def test_the_rank_is_ceil_share_times_n(n: int, share: float, rank: int) -> None:
    values = [float(10 * index) for index in range(1, n + 1)]
    assert percentile(values, share) == 10.0 * rank


def test_the_answer_is_always_one_of_the_values() -> None:
    values = [1.5, 9.25, 3.0, 4.75]
    for share in (0.05, 0.25, 0.5, 0.75, 0.95):
        assert percentile(values, share) in values


def test_a_latency_window_reports_nearest_rank_p50_and_p95() -> None:
    window = LatencyWindow(size=4)
    for ms in (500, 100, 200, 300, 400):  # the oldest (500) falls out of the window
        window.add(ms)
    assert window.summary() == {"p50Ms": 200, "p95Ms": 400, "lastMs": 400, "count": 4}


def test_a_suggestions_latency_split_adds_up_and_lands_in_its_windows() -> None:
    from companion.bench.latency import split_summary
    from companion.engine.completer import latency_split
    from companion.engine.metrics import Metrics
    from companion.engine.stream import Suggestion

    suggestion = Suggestion("x", "model", 100.0, context_ms=5.0, queue_ms=10.0,
                            prefill_ms=30.0, decode_ms=40.0, post_ms=1.0)
    parts = latency_split(suggestion)
    assert parts["other"] == pytest.approx(14.0) and parts["total"] == 100.0
    metrics = Metrics()
    metrics.split(parts)
    metrics.split(latency_split(Suggestion("y", "model", 10.0, decode_ms=20.0)))
    windows = metrics.snapshot()["latency"]
    assert windows["splitPrefill"]["count"] == 2 and windows["splitPrefill"]["lastMs"] == 0.0
    assert windows["splitOther"]["lastMs"] == 0.0  # parts past the total are not negative
    rows = [{**latency_split(Suggestion("z", "model", float(ms), decode_ms=float(ms)))}
            for ms in range(1, 101)]
    summary = split_summary(rows)
    assert summary is not None and summary["count"] == 100 and summary["slowestCount"] == 5
    assert summary["slowest5pct"]["decode"] == 98.0 and summary["median"]["decode"] == 50.5
