"""Scheduler (one generation at a time, superseding) and the type-ahead cache."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from companion.backends.base import CancelFlag
from companion.engine.scheduler import ResultCache, Scheduler, Superseded


def test_cache_exact_and_type_ahead() -> None:
    cache = ResultCache()
    cache.put("u", "x = comp", ")", "ute(1, 2)")
    assert cache.get("u", "x = comp", ")") == "ute(1, 2)"
    assert cache.get("u", "x = compu", ")") == "te(1, 2)"
    assert cache.get("u", "x = compa", ")") is None  # typed something else
    assert cache.get("u", "x = comp", "") is None  # different suffix
    assert cache.get("other", "x = comp", ")") is None


def test_cache_is_bounded() -> None:
    cache = ResultCache(size=4)
    for index in range(10):
        cache.put("u", f"p{index}", "", "t")
    assert cache.get("u", "p0", "") is None
    assert cache.get("u", "p9", "") == "t"


async def test_newer_request_cancels_the_older_one() -> None:
    scheduler = Scheduler()
    started = threading.Event()

    def slow(flag: CancelFlag) -> str:
        started.set()
        deadline = time.monotonic() + 5
        while not flag.cancelled and time.monotonic() < deadline:
            time.sleep(0.005)
        return "cancelled" if flag.cancelled else "finished"

    first = asyncio.ensure_future(scheduler.run("doc", slow, CancelFlag()))
    await asyncio.get_running_loop().run_in_executor(None, started.wait)
    second = await scheduler.run("doc", lambda flag: "second", CancelFlag())
    assert await first == "cancelled"
    assert second == "second"
    scheduler.shutdown()


async def test_task_cancellation_sets_the_flag() -> None:
    scheduler = Scheduler()
    flag = CancelFlag()
    started = threading.Event()

    def wait(flag: CancelFlag) -> None:
        started.set()
        while not flag.cancelled:
            time.sleep(0.005)

    task = asyncio.ensure_future(scheduler.run("doc", wait, flag))
    await asyncio.get_running_loop().run_in_executor(None, started.wait)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert flag.cancelled
    scheduler.shutdown()


async def test_queued_cancelled_work_is_skipped() -> None:
    scheduler = Scheduler()
    flag = CancelFlag()
    flag.cancel()
    with pytest.raises(Superseded):
        await scheduler.run("doc", lambda f: "ran", flag)
    scheduler.shutdown()
