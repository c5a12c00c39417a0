"""One generation at a time, newest request first, and a small result cache.

Generations run on a single worker thread (one model, one generation). A newer request
for the same document cancels the older one's flag, and an LSP `$/cancelRequest`
cancels the awaiting task, which sets the flag too: the backend stops between tokens.
A request whose flag is already set when the worker reaches it is skipped outright.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from companion.backends.base import CancelFlag

T = TypeVar("T")


class Superseded(Exception):
    """The request was cancelled before or while it ran."""


class Scheduler:
    """Serialises generations and cancels superseded ones."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        self._latest: dict[str, CancelFlag] = {}
        self._lock = threading.Lock()
        self._queued = 0  # jobs submitted to the worker and not finished yet

    def _supersede(self, key: str, flag: CancelFlag) -> None:
        with self._lock:
            previous = self._latest.get(key)
            if previous is not None and previous is not flag:
                previous.cancel()
            self._latest[key] = flag

    def _release(self, key: str, flag: CancelFlag) -> None:
        with self._lock:
            if self._latest.get(key) is flag:
                del self._latest[key]

    @staticmethod
    def _guarded(job: Callable[[CancelFlag], T], flag: CancelFlag) -> T:
        if flag.cancelled:
            raise Superseded()
        return job(flag)

    def _finished(self, _: object) -> None:
        with self._lock:
            self._queued -= 1

    @property
    def in_flight(self) -> int:
        """Generations running or waiting for the worker (0 when idle)."""
        with self._lock:
            return self._queued

    async def run(self, key: str, job: Callable[[CancelFlag], T], flag: CancelFlag) -> T:
        """Run `job(flag)` on the generation thread; newer work for `key` cancels it."""
        self._supersede(key, flag)
        with self._lock:
            self._queued += 1
        # Counted down when the job ends, fails, or is dropped from the queue unstarted.
        submitted = self._executor.submit(self._guarded, job, flag)
        submitted.add_done_callback(self._finished)
        try:
            return await asyncio.wrap_future(submitted)
        except asyncio.CancelledError:
            flag.cancel()
            raise
        finally:
            self._release(key, flag)

    async def run_exclusive(self, job: Callable[[], T]) -> T:
        """Run `job` on the generation thread (model loads: never beside a generation)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, job)

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """Queue `job` on the generation thread (for callers outside the event loop)."""
        return self._executor.submit(job)

    def cancel_all(self) -> None:
        with self._lock:
            for flag in self._latest.values():
                flag.cancel()

    def shutdown(self) -> None:
        self.cancel_all()
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class CachedCompletion:
    """A suggestion and the exact text around the cursor it was made for."""

    prefix: str
    suffix: str
    text: str


class ResultCache:
    """Recent suggestions per document, with type-ahead: when the user types the first
    characters of a cached suggestion, the rest of it is the answer (no model call)."""

    def __init__(self, size: int = 64) -> None:
        self._entries: OrderedDict[tuple[str, str, str], CachedCompletion] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def put(self, uri: str, prefix: str, suffix: str, text: str) -> None:
        key = (uri, prefix[-256:], suffix[:256])
        with self._lock:
            self._entries[key] = CachedCompletion(prefix, suffix, text)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def get(self, uri: str, prefix: str, suffix: str) -> str | None:
        """The cached suggestion for this exact spot, or the rest of one being typed."""
        with self._lock:
            entries = list(self._entries.items())
        for (entry_uri, _, _), entry in reversed(entries):
            if entry_uri != uri or entry.suffix != suffix:
                continue
            if entry.prefix == prefix:
                return entry.text
            if len(prefix) > len(entry.prefix) and prefix.startswith(entry.prefix):
                typed = prefix[len(entry.prefix) :]
                if entry.text.startswith(typed) and len(entry.text) > len(typed):
                    return entry.text[len(typed) :]
        return None

    def clear(self, uri: str | None = None) -> None:
        with self._lock:
            if uri is None:
                self._entries.clear()
            else:
                for key in [k for k in self._entries if k[0] == uri]:
                    del self._entries[key]
