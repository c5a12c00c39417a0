"""The process's one jedi thread (engine/jedi_worker.py): the name check's module lookups
and the repository header's definitions never run jedi at the same time, and one user
going away does not stop the thread for the other."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from companion.engine import jedi_worker, names_modules, repo_context
from companion.engine.context import CursorContext, build_context
from companion.engine.names_modules import ModuleNames
from companion.engine.repo_context import RepoContext

F = TypeVar("F", bound=Callable[..., Any])


class Overlaps:
    """Records calls that run while another recorded call is running, on any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.calls = 0
        self.overlapping: list[str] = []
        self.threads: set[str] = set()

    def record(self, fn: F) -> F:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.active += 1
                self.calls += 1
                self.threads.add(threading.current_thread().name)
                if self.active > 1:
                    self.overlapping.append(fn.__name__)
            try:
                time.sleep(0.02)  # long enough for a second thread to come in
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.active -= 1

        return recorded  # type: ignore[return-value]


def _module_names(statement: str, local: str, path: str
                  ) -> tuple[str, int, frozenset[str] | None]:
    return "", 0, frozenset({"known"})


def _definitions(text: str, path: str, ctx: CursorContext) -> list[str]:
    return [f"definitions of {path}"]


def test_names_and_repo_context_never_run_jedi_at_the_same_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    overlaps = Overlaps()
    monkeypatch.setattr(names_modules, "_jedi_names", overlaps.record(_module_names))
    monkeypatch.setattr(repo_context, "python_definitions", overlaps.record(_definitions))
    modules, repo = ModuleNames(), RepoContext()
    ctx = build_context("x = 1\n", 1, 0, path="/tmp/a.py")

    def ask_names(index: int) -> object:
        return modules.names(f"import mod{index}", f"mod{index}", "", 10.0)

    def ask_repo(index: int) -> object:
        return repo.definitions(f"file:///{index}.py", f"x = {index}\n", ctx, 10.0)

    try:
        with ThreadPoolExecutor(max_workers=8) as callers:
            asked = [callers.submit(ask, index) for index in range(6)
                     for ask in (ask_names, ask_repo)]
            answers = [future.result(timeout=30) for future in asked]
    finally:
        repo.shutdown()
    assert answers[0] == frozenset({"known"}) and answers[1][1] is True  # type: ignore[index]
    assert overlaps.calls == 12
    assert overlaps.overlapping == []
    assert len(overlaps.threads) == 1
    assert next(iter(overlaps.threads)).startswith(jedi_worker.THREAD_NAME)


def test_a_repo_context_shut_down_leaves_the_jedi_thread_to_the_name_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(names_modules, "_jedi_names", _module_names)
    repo = RepoContext()
    repo.shutdown()
    assert ModuleNames().names("import after", "after", "", 10.0) == frozenset({"known"})


def test_a_thread_started_after_shutdown_waits_for_the_old_one() -> None:
    overlaps = Overlaps()
    slow = overlaps.record(lambda: time.sleep(0.2))
    first = jedi_worker.submit(slow)
    time.sleep(0.05)  # running, not just queued
    jedi_worker.shutdown()
    second = jedi_worker.submit(slow)
    first.result(timeout=10)
    second.result(timeout=10)
    assert overlaps.calls == 2 and overlaps.overlapping == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_jedi_thread_yields_the_cores_to_the_model_and_only_it() -> None:
    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    caller = niceness()
    on_jedi = jedi_worker.submit(niceness).result(timeout=10)
    assert on_jedi == min(19, caller + jedi_worker.JEDI_NICE)
    assert niceness() == caller  # the server's own threads keep theirs


def test_empty_pickles_left_by_an_interrupted_save_are_dropped(tmp_path: Path) -> None:
    folder = tmp_path / "CPython-311-33"
    folder.mkdir()
    (folder / "empty-a.pkl").write_bytes(b"")
    (folder / "good.pkl").write_bytes(b"\x80\x04N.")
    (folder / "empty.txt").write_bytes(b"")
    assert jedi_worker.drop_empty_pickles(str(tmp_path)) == 1
    assert sorted(path.name for path in folder.iterdir()) == ["empty.txt", "good.pkl"]
    assert jedi_worker.drop_empty_pickles(str(tmp_path / "missing")) == 0


def test_a_truncated_cache_pickle_is_parsed_again_not_an_error(tmp_path: Path) -> None:
    import jedi  # type: ignore[import-untyped]
    import parso.cache  # type: ignore[import-untyped]

    assert jedi_worker.safe_parso_cache()
    module = tmp_path / "shapes.py"
    module.write_text("def area(width, height):\n    return width * height\n")
    code = "import shapes\nshapes."
    cache = str(tmp_path / "cache")
    previous = jedi.settings.cache_directory
    jedi.settings.cache_directory = cache
    try:
        project = jedi.Project(str(tmp_path))
        assert "area" in [c.name for c in jedi.Script(code, project=project).complete(2, 7)]
        pickles = list(Path(cache).rglob("*.pkl"))
        assert pickles and not list(Path(cache).rglob("*.tmp"))  # saved whole, renamed
        for pickle_path in pickles:  # what a writer killed mid-save leaves
            data = pickle_path.read_bytes()
            pickle_path.write_bytes(data[: len(data) // 2])
        parso.cache.parser_cache.clear()  # a new process: only the disk cache is there
        assert "area" in [c.name for c in jedi.Script(code, project=project).complete(2, 7)]
    finally:
        jedi.settings.cache_directory = previous
