"""The names of imported modules, for the name check's `m.x` (`names.py`).

`m.x` is judged only where the document imports module m (`import a.b as m`, `from p
import m`) and binds m nowhere else: x must be among m's names as jedi completes them
(submodules included). The lookups run on the process's one jedi thread
(`jedi_worker.py`); a request waits for one at most a few ms (typing) or a quarter second
(invoked), and what is not known in time is not judged — the answer is cached, per import
statement and checked against the module file's modification time, for the next request.
A module that defines `__getattr__` makes names up as asked: not judged.

The same machinery tells what instances of an imported base class have, for `self.x` in
a subclass (`base_resolver`, `BASES`): jedi completes `self.` in a method of a class
derived from it; a class with a `__getattr__` (made-up attributes) is not judged.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from companion.engine import jedi_worker
from companion.engine.names_classes import OBJECT_ATTRIBUTES, External
from companion.engine.names_document import Document

log = logging.getLogger(__name__)

_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]+)", re.MULTILINE)
_FROM_IMPORT = re.compile(
    r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.MULTILINE)


def imported_modules(doc: Document) -> dict[str, str]:
    """Local name → the import statement that binds it (`import a.b as m`, `from p import
    m`), for names bound by imports only."""
    found: dict[str, str] = {}
    for text in reversed(doc.texts):  # the window (newer) wins over the saved file
        found.update(_imports_in(text))
    return found


@functools.lru_cache(maxsize=8)
def _imports_in(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _IMPORT.finditer(text):
        for part in match.group(1).split(","):
            words = part.split()
            if not words or not re.fullmatch(r"[\w.]+", words[0]):
                continue
            if len(words) == 3 and words[1] == "as":
                found[words[2]] = f"import {words[0]} as {words[2]}"
            elif len(words) == 1:
                head = words[0].split(".")[0]
                found.setdefault(head, f"import {head}")
    for match in _FROM_IMPORT.finditer(text):
        module, names = match.group(1), match.group(2).strip("() \t\n")
        for part in names.split(","):
            words = part.split()
            if not words or not re.fullmatch(r"\w+", words[0]):
                continue
            local = words[2] if len(words) == 3 and words[1] == "as" else words[0]
            found[local] = f"from {module} import {words[0]}" + (
                f" as {local}" if local != words[0] else "")
    return found


def rebound(doc: Document, name: str) -> bool:
    """Is `name` bound by anything but an import (an assignment, a loop, a parameter)?"""
    return any(name in bound_names(text) for text in doc.texts)


# What binds a name, but an import: `n = …`, `n: T = …`, `n, m = …`, `for n`, `def n`,
# `class n`, `with … as n` (an `as` on an import line binds a module), a parameter.
_BINDING_FORMS = (
    re.compile(r"(?<![.\w])(\w+)(?=\s*(?::[^=\n]*)?=(?!=))"),
    re.compile(r"\b(\w+)(?=\s*,[^=\n]*=(?!=))"),
    re.compile(r"\bfor\s+(\w+)\b"),
    re.compile(r"(?:def|class)\s+(\w+)\b"),
)
_ALIAS = re.compile(r"\bas\s+(\w+)\b")
_PARAMETERS = re.compile(r"def\s+\w+\(([^)]*)")  # may span lines
_WORD = re.compile(r"\w+")
_IMPORT_LINE = re.compile(r"\s*(?:import|from)\s")


@functools.lru_cache(maxsize=8)
def bound_names(text: str) -> frozenset[str]:
    """The names `text` binds other than by an import. Read line by line, each line's
    answer cached: a keystroke changes one line, and this runs at every keystroke (the
    whole text's parameter lists are one cheap pass)."""
    found: set[str] = set()
    for line in text.split("\n"):
        found.update(_bound_on(line))
    for match in _PARAMETERS.finditer(text):
        found.update(_WORD.findall(match.group(1)))
    return frozenset(found)


@functools.lru_cache(maxsize=16384)
def _bound_on(line: str) -> frozenset[str]:
    found: set[str] = set()
    for form in _BINDING_FORMS:
        found.update(form.findall(line))
    if not _IMPORT_LINE.match(line):
        found.update(_ALIAS.findall(line))
    return frozenset(found)


Lookup = Callable[[str, str, str], tuple[str, int, "frozenset[str] | None"]]
Key = tuple[str, str, str]  # (document path, import statement, expression)


class ModuleNames:
    """jedi's names of modules (or, with `lookup=_jedi_base_names`, of the instances of
    imported classes), looked up on the jedi thread, cached per import statement and
    expression and checked against the defining file's modification time."""

    def __init__(self, lookup: Lookup | None = None) -> None:
        self._lock = threading.Lock()
        self._done: dict[Key, tuple[str, int, frozenset[str] | None]] = {}
        self._pending: dict[Key, Future[None]] = {}
        self._jedi: Lookup = lookup or _jedi_names
        self.lookups = 0

    def names(self, statement: str, local: str, path: str, wait_s: float
              ) -> frozenset[str] | None:
        """The names of `local` (a module, or what `ModuleNames(lookup)` looks up), or
        None: not that, not known, or not known in time."""
        key = (path, statement, local)
        with self._lock:
            done = self._done.get(key)
            if done is not None and _fresh(done[0], done[1]):
                return done[2]
            future = self._pending.get(key)
            if future is None:
                future = jedi_worker.submit(self._lookup, key, statement, local, path)
                self._pending[key] = future
        try:
            future.result(timeout=max(0.0, wait_s))
        except FutureTimeout:
            return None
        except Exception as error:  # cancelled: the jedi thread was shut down (at exit)
            log.debug("module names for %r failed: %s", statement, error)
            with self._lock:
                if self._pending.get(key) is future:
                    del self._pending[key]  # asked again next time
            return None
        with self._lock:
            done = self._done.get(key)
        return done[2] if done is not None else None

    def _lookup(self, key: Key, statement: str, local: str, path: str) -> None:
        self.lookups += 1
        module_path, mtime, found = "", 0, None
        try:
            module_path, mtime, found = self._jedi(statement, local, path)
        except Exception as error:  # jedi on odd code: unknown, never an error
            log.debug("jedi could not resolve %r: %s", statement, error)
        with self._lock:
            self._done[key] = (module_path, mtime, found)
            self._pending.pop(key, None)
            while len(self._done) > 512:
                self._done.pop(next(iter(self._done)))


def _fresh(module_path: str, mtime: int) -> bool:
    if not module_path:
        return True
    try:
        return os.stat(module_path).st_mtime_ns == mtime
    except OSError:
        return False


def _jedi_script(code: str, path: str, line: int, column: int, kind: str
                 ) -> tuple[Any, str, int] | None:
    """jedi's script of `code` (as if at `path`, in its project) when what stands at
    (line, column) infers to a `kind` ("module", "class") only; with the defining file
    and its modification time ("", 0 when it has none)."""
    import jedi  # type: ignore[import-untyped]

    from companion.engine.repo_context import project_root

    project = jedi.Project(project_root(path), smart_sys_path=True) if path else None
    script = jedi.Script(code=code, path=path or None, project=project)
    inferred = script.infer(line, column)
    if not inferred or any(definition.type != kind for definition in inferred):
        return None
    module_path = str(inferred[0].module_path or "")
    mtime = 0
    if module_path:
        try:
            mtime = os.stat(module_path).st_mtime_ns
        except OSError:
            module_path = ""
    return script, module_path, mtime


def _jedi_names(statement: str, local: str, path: str) -> tuple[str, int, frozenset[str] | None]:
    found = _jedi_script(f"{statement}\n{local}.", path, 2, 0, "module")
    if found is None:
        return "", 0, None
    script, module_path, mtime = found
    names = frozenset(completion.name for completion in script.complete(2, len(local) + 1))
    if not names or "__getattr__" in names:
        return module_path, mtime, None  # a module that makes names up as asked
    return module_path, mtime, names | OBJECT_ATTRIBUTES | {"__file__", "__path__", "__all__"}


def _jedi_base_names(statement: str, base: str, path: str
                     ) -> tuple[str, int, frozenset[str] | None]:
    """What instances of the class `base` (bound by `statement`) have, as jedi completes
    `self.` in a method of a class derived from it (inherited attributes included)."""
    code = f"{statement}\nclass _Probe({base}):\n    def _probe(self):\n        self."
    found = _jedi_script(code, path, 2, len("class _Probe(") + len(base) - 1, "class")
    if found is None:
        return "", 0, None
    script, module_path, mtime = found
    names = frozenset(completion.name for completion in script.complete(4, 13)) - {"_probe"}
    if not names or "__getattr__" in names:
        return module_path, mtime, None  # attributes made up as asked
    return module_path, mtime, names | OBJECT_ATTRIBUTES


def base_resolver(doc: Document, path: str, wait_s: float,
                  bases: ModuleNames | None = None) -> External:
    """For `self_attributes`: a base class expression (`Formatter`, `abc.Mapping`) → what
    its instances have, where the document imports its first name and binds it nowhere
    else; each lookup waits at most `wait_s` (what is not known in time is None)."""
    lookups = bases or BASES
    imports: dict[str, str] | None = None

    def resolve(base: str) -> frozenset[str] | None:
        nonlocal imports
        if imports is None:
            imports = imported_modules(doc)
        root = base.split(".")[0]
        statement = imports.get(root)
        if statement is None or rebound(doc, root):
            return None
        return lookups.names(statement, base, path, wait_s)

    return resolve


MODULES = ModuleNames()
BASES = ModuleNames(_jedi_base_names)
