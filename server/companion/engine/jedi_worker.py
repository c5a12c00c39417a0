"""The process's one jedi thread: every jedi call (the name check's module names,
`names_modules.py`; the repository header's definitions, `repo_context.py`) runs here.

jedi is not thread-safe. Seen with jedi 0.20.1 from two threads: it raises the process's
recursion limit (1000 → 3000) only for the length of an API call and then puts back what it
found, so a quick call ending lowers it under a long one still deep in jedi: RecursionError,
and when that strikes parso's cache save (the file opened, then pickled into) an empty
pickle that fails every later load with EOFError. Its one subprocess for compiled modules
is a pipe the two threads' replies cross on ("invalid load key", "unpickling stack
underflow"). One thread, started on first use, runs the calls in the order they were
submitted; a caller waits on its future as long as it can afford and otherwise goes on
without (the call still finishes, its owner keeps the answer).

Empty pickles that such a crash left in jedi's cache (an older Companion, or another tool
using jedi from threads) would fail every load of their module until the source changes;
the thread's first act is to delete the empty ones (`drop_empty_pickles`).

The thread runs at a lower scheduling priority (`lower_priority`, Linux nice JEDI_NICE):
its lookups are prefetches and caps that no request waits long for, while the model's
threads in the engine host use every physical core, and llama.cpp's threads run in
lockstep, so one core taken by jedi slowed a whole generation (the first suggestion in a
newly opened file, while its lookups ran). Niced, jedi gets the cores the model leaves.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pickle
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)

THREAD_NAME = "companion-jedi"
JEDI_NICE = 10  # added to the jedi thread's niceness (Linux: per thread); 19 is the lowest

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_retired: ThreadPoolExecutor | None = None  # shut down, its thread maybe still in jedi


def drop_empty_pickles(directory: str | None = None) -> int:
    """Delete the zero-byte `*.pkl` files under jedi's cache directory (a pickle is never
    empty: an interrupted save left it); returns how many went. Errors cost nothing."""
    try:
        if directory is None:
            import jedi  # type: ignore[import-untyped]

            directory = jedi.settings.cache_directory
        dropped = 0
        for path in Path(directory).rglob("*.pkl"):
            try:
                if path.stat().st_size == 0:
                    path.unlink()
                    dropped += 1
            except OSError:
                continue
    except Exception as error:
        log.debug("jedi cache not checked: %s", error)
        return 0
    if dropped:
        log.info("removed %d empty jedi cache files (left by an interrupted save)", dropped)
    return dropped


def safe_parso_cache() -> bool:
    """Make parso's on-disk cache (shared by every process using jedi: two servers, the
    tests) safe across processes: a save goes to a temporary file renamed into place, so
    no reader ever sees half a pickle and two writers never interleave; a pickle that
    still fails to load is dropped and the module parsed again, instead of failing every
    inference that needs it ("EOFError: Ran out of input", seen in a clean-clone CI run).
    False when parso's internals are not the ones expected (then nothing is changed)."""
    try:
        import parso.cache as cache  # type: ignore[import-untyped]
    except Exception:
        return False
    save = getattr(cache, "_save_to_file_system", None)
    load = getattr(cache, "_load_from_file_system", None)
    hashed = getattr(cache, "_get_hashed_path", None)
    if save is None or load is None or hashed is None or getattr(save, "companion", False):
        return bool(getattr(save, "companion", False))

    def atomic_save(hashed_grammar: str, path: str, item: object,
                    cache_path: str | None = None) -> None:
        target = hashed(hashed_grammar, path, cache_path=cache_path)
        temporary = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(temporary, "wb") as handle:
                pickle.dump(item, handle, pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, target)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)

    def tolerant_load(hashed_grammar: str, path: str, p_time: float,
                      cache_path: str | None = None) -> object:
        try:
            return load(hashed_grammar, path, p_time, cache_path=cache_path)
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
                ImportError, IndexError, OSError) as error:
            log.debug("unreadable jedi cache entry for %s dropped: %s", path, error)
            with contextlib.suppress(OSError):
                os.unlink(hashed(hashed_grammar, path, cache_path=cache_path))
            return None

    atomic_save.companion = True  # type: ignore[attr-defined]
    cache._save_to_file_system = atomic_save
    cache._load_from_file_system = tolerant_load
    return True


def lower_priority(increment: int = JEDI_NICE) -> bool:
    """Raise the calling thread's niceness by `increment` (never needs privileges; it
    cannot be lowered again, so only for a thread of its own). Linux schedules threads
    one by one, so this is the thread's alone; elsewhere nothing changes (False)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return False
    try:
        thread = threading.get_native_id()
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, now + increment))
    except OSError as error:
        log.debug("jedi thread priority unchanged: %s", error)
        return False
    return True


def _start(wait_for_old: Callable[[], None] | None) -> None:
    lower_priority()
    if wait_for_old is not None:
        wait_for_old()
    safe_parso_cache()
    drop_empty_pickles()


def submit(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """Run `fn(*args, **kwargs)` on the jedi thread, after the calls already submitted."""
    global _executor
    with _lock:
        if _executor is None:
            # After a shutdown the new thread first waits for the old one to leave jedi.
            wait_for_old = (functools.partial(_retired.shutdown, wait=True)
                            if _retired is not None else None)
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME,
                                           initializer=_start, initargs=(wait_for_old,))
        return _executor.submit(fn, *args, **kwargs)


def shutdown() -> None:
    """At exit: the calls not started yet are cancelled, the one running finishes on its
    own (not waited for). Only for the whole process — a user going away (a RepoContext
    shut down) cancels its own futures, never the thread the others share."""
    global _executor, _retired
    with _lock:
        old, _executor = _executor, None
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)
            _retired = old
