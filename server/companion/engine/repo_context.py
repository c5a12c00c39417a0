"""Context from the repository: what the names near the cursor are, and similar code.

Two sources, rendered as a commented header ahead of the prefix:

- **Definitions** (Python, jedi): the signature and first docstring line of the names used
  in the last lines before the cursor when they are defined outside the visible window
  (another module, or further away in this one), the attributes and methods of `self`'s
  class, and the public names of a module used as `module.`. jedi runs on the process's
  one jedi thread (`jedi_worker.py`); a request waits for it at most `wait_s` (as-you-type:
  a few tens of ms) and otherwise uses the last result for that document, so a keystroke
  never waits on jedi.
- **Similar windows** (any language): ~60-line windows of the other open documents, ranked
  by the Jaccard similarity of their identifiers with the lines before the cursor; the
  best few, trimmed to the lines that share the most names, within a character budget.

Results are cached per document version (the text's hash) and the header is kept per
(document, prefix window start), so while the user types it stays the same and the
engine's prefix cache keeps working: the header is the start of the prompt.
"""

from __future__ import annotations

import builtins
import keyword
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.engine import jedi_worker
from companion.engine.context import CursorContext

log = logging.getLogger(__name__)

REPO_CONTEXT_CHARS = 1400  # about 440 tokens of header, taken from the prefix budget
DEFINITION_CHARS = 700
SELF_CLASS_CHARS = 400
WINDOW_LINES = 60
WINDOW_STRIDE = 20
SHOWN_LINES = 14
TOP_WINDOWS = 2
NEAR_LINES = 8  # names in this many lines before the cursor are looked up
MAX_NAMES = 10
# How long a request waits for jedi: as-you-type within the typing budget, explicit
# invocations longer. Past it the last result for the document answers.
TYPING_WAIT_S = 0.06
INVOKED_WAIT_S = 1.5
JEDI_BUDGET_S = 2.0  # jedi's thread stops looking up more names after this

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SELF_ATTRIBUTE = re.compile(r"self\.([A-Za-z_]\w*)\s*(?::[^=\n]*)?=(?!=)")
_COMMON = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls"}


def identifiers(text: str) -> set[str]:
    """The identifiers in `text`, without keywords and builtins."""
    return {name for name in _IDENTIFIER.findall(text) if name not in _COMMON}


def jaccard(a: set[str] | frozenset[str], b: set[str] | frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


@dataclass(frozen=True)
class Window:
    path: str
    start: int  # 0-based first line
    lines: tuple[str, ...]
    names: frozenset[str]


class SimilarWindows:
    """Identifier sets of the windows of each document, cached by its text."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, list[Window]]] = {}

    def windows(self, path: str, text: str) -> list[Window]:
        key = hash(text)
        cached = self._windows.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        lines = text.split("\n")
        found = []
        for start in range(0, max(1, len(lines) - WINDOW_LINES + WINDOW_STRIDE), WINDOW_STRIDE):
            chunk = tuple(lines[start : start + WINDOW_LINES])
            names = frozenset(identifiers("\n".join(chunk)))
            if names:
                found.append(Window(path, start, chunk, names))
        self._windows[path] = (key, found)
        return found

    def forget(self, keep: set[str]) -> None:
        for path in [p for p in self._windows if p not in keep]:
            del self._windows[path]

    def best(self, query: str, documents: Mapping[str, str], budget_chars: int,
             top: int = TOP_WINDOWS) -> list[tuple[str, int, list[str]]]:
        """The `top` windows most like `query`: (path, first line, lines shown)."""
        wanted = identifiers(query)
        if not wanted:
            return []
        scored = []
        for path, text in documents.items():
            for window in self.windows(path, text):
                score = jaccard(wanted, window.names)
                if score > 0.05:
                    scored.append((score, window))
        scored.sort(key=lambda item: -item[0])
        chosen: list[tuple[str, int, list[str]]] = []
        per_window = budget_chars // max(1, top)
        for _, window in scored:
            if len(chosen) == top:
                break
            if any(path == window.path and abs(start - window.start) < WINDOW_LINES
                   for path, start, _ in chosen):
                continue
            start, shown = _densest(window.lines, wanted)
            kept: list[str] = []
            used = 0
            for line in shown:
                if used + len(line) + 3 > per_window:
                    break
                kept.append(line)
                used += len(line) + 3
            if any(line.strip() for line in kept):
                chosen.append((window.path, window.start + start, kept))
        return chosen


def _densest(lines: tuple[str, ...], wanted: set[str]) -> tuple[int, list[str]]:
    """The SHOWN_LINES slice of `lines` that shares the most names with `wanted`."""
    best_start, best_score = 0, -1
    for start in range(0, max(1, len(lines) - SHOWN_LINES + 1), 3):
        score = len(identifiers("\n".join(lines[start : start + SHOWN_LINES])) & wanted)
        if score > best_score:
            best_start, best_score = start, score
    return best_start, list(lines[best_start : best_start + SHOWN_LINES])


def project_root(path: str) -> str:
    """The folder above the outermost package that holds `path`."""
    folder = Path(path).parent
    while (folder / "__init__.py").exists() and folder.parent != folder:
        folder = folder.parent
    return str(folder)


def _short(path: object, root: str) -> str:
    text = str(path)
    return text[len(root) + 1 :] if root and text.startswith(root + "/") else Path(text).name


def python_definitions(text: str, path: str, ctx: CursorContext) -> list[str]:
    """Lines (uncommented) describing the names near the cursor, as jedi resolves them."""
    import jedi  # type: ignore[import-untyped]

    root = project_root(path) if path else ""
    project = jedi.Project(root, smart_sys_path=True) if root else None
    script = jedi.Script(code=text, path=path or None, project=project)
    lines = text.split("\n")
    first = max(0, ctx.line - NEAR_LINES)
    positions: dict[str, tuple[int, int]] = {}
    for number in range(first, ctx.line + 1):
        source = lines[number][: ctx.column] if number == ctx.line else lines[number]
        for match in _IDENTIFIER.finditer(source):
            name = match.group()
            if name in _COMMON or (match.start() and source[match.start() - 1] == "."
                                   and name in positions):
                continue
            positions[name] = (number + 1, match.start())
    described: list[str] = []
    seen: set[tuple[str, int]] = set()
    give_up = time.monotonic() + JEDI_BUDGET_S
    for name, (row, column) in list(reversed(positions.items()))[:MAX_NAMES]:
        if time.monotonic() > give_up:  # a slow inference: what is there so far
            break
        try:
            found = script.goto(row, column, follow_imports=True)
        except Exception:  # jedi on half-typed code: no definition, not an error
            continue
        for definition in found[:1]:
            module = str(definition.module_path or "")
            if not module or "typeshed" in module or (definition.line is None):
                continue
            visible = (module == path and ctx.prefix_start_line < definition.line <= ctx.line + 1)
            if visible or definition.type == "param" or (module, definition.line) in seen:
                continue
            seen.add((module, definition.line))
            where = _short(module, root)
            if definition.type == "module":
                names = [n.name for n in definition.defined_names()
                         if not n.name.startswith("_")][:24]
                if names:
                    described.append(f"module {definition.full_name or name} ({where}): "
                                     + ", ".join(names))
                continue
            signature = next((s.to_string() for s in definition.get_signatures()), "")
            head = signature or f"{definition.name}"
            if definition.type == "class" and signature:
                head = f"class {signature}"
            elif definition.type == "function":
                head = f"def {signature or definition.name + '(...)'}"
            elif definition.type == "statement":
                head = definition.description
            doc = (definition.docstring(raw=True) or "").strip().split("\n")[0][:100]
            described.append(f"{where}: {head}" + (f"  # {doc}" if doc else ""))
    described.extend(_self_class(script, text, ctx))
    return described


def _self_class(script: Any, text: str, ctx: CursorContext) -> list[str]:
    """`self`'s class: its methods (with signatures) and the attributes it assigns."""
    if "self" not in ctx.prefix[-2000:]:
        return []
    try:
        scope = script.get_context(ctx.line + 1, ctx.column)
        while scope is not None and scope.type != "class":
            scope = scope.parent()
    except Exception:
        return []
    if scope is None or scope.type != "class":
        return []
    lines = text.split("\n")[scope.line - 1 :] if scope.line else []
    end = next((i for i, line in enumerate(lines[1:], 1)
                if line.strip() and not line[:1].isspace()), len(lines))
    source = "\n".join(lines[:end])
    methods = re.findall(r"^([ \t]+)(?:async )?def ([A-Za-z_]\w*)\(([^)]*)\)", source,
                         re.MULTILINE)
    depth = min((len(indent) for indent, _, _ in methods), default=0)
    shown: dict[str, str] = {}
    for indent, name, args in methods:
        if len(indent) != depth or (name.startswith("__") and name != "__init__") \
                or name in shown:
            continue
        shown[name] = f"{name}({', '.join(_parameter_names(args))})"
    # Public names first: they are what code elsewhere in the class calls.
    ordered = sorted(shown, key=lambda name: name.startswith("_") and name != "__init__")
    attributes = sorted(set(_SELF_ATTRIBUTE.findall(source)),
                        key=lambda name: (name.startswith("_"), name))
    parts = []
    if attributes:
        parts.append("attributes " + ", ".join(attributes[:16]))
    if shown:
        parts.append("methods " + ", ".join(shown[name] for name in ordered[:20]))
    summary = f"class {scope.name} (self): " + "; ".join(parts)
    return [summary[:SELF_CLASS_CHARS]] if parts else []


def _parameter_names(parameters: str) -> list[str]:
    """`a: int = 1, *args: str` → ["a", "*args"] (annotations and defaults left out)."""
    names, depth, part = [], 0, ""
    for char in parameters + ",":
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            name = re.split(r"[:=]", part, maxsplit=1)[0].strip()
            if name and name not in ("self", "cls", "/"):
                names.append(name)
            part = ""
        else:
            part += char
    return names


class RepoContext:
    """The repository header for a cursor, cached per document version and per window."""

    def __init__(self) -> None:
        self.similar = SimilarWindows()
        self._lock = threading.Lock()
        self._pending: dict[str, Future[list[str]]] = {}
        self._done: OrderedDict[tuple[str, int, int], list[str]] = OrderedDict()
        self._latest: dict[str, list[str]] = {}  # the newest jedi answer per document
        # per document: the window start, its header, whether jedi had answered
        self._headers: dict[str, tuple[int, str, bool]] = {}
        self.jedi_timeouts = 0

    def shutdown(self) -> None:
        """Drop this header's jedi calls not started yet; the jedi thread itself is the
        process's (the name check uses it too) and stays."""
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for future in pending:
            future.cancel()

    def definitions(self, uri: str, text: str, ctx: CursorContext, wait_s: float
                    ) -> tuple[list[str], bool]:
        """jedi's lines for this cursor, and whether they are for this very version: it
        waits at most `wait_s`, else answers with the document's last lines."""
        if ctx.language != "python":
            return [], True
        key = (uri, hash(text), ctx.line)
        with self._lock:
            if key in self._done:
                return self._done[key], True
            future = self._pending.get(uri)
            if future is None:
                future = jedi_worker.submit(self._resolve, key, text, ctx)
                self._pending[uri] = future
        try:
            future.result(timeout=wait_s)
        except FutureTimeout:
            self.jedi_timeouts += 1
        except Exception as error:  # failed or cancelled: costs the context, never the suggestion
            log.debug("jedi failed for %s: %s", uri, error)
            with self._lock:
                if self._pending.get(uri) is future:
                    del self._pending[uri]  # asked again next time
        with self._lock:
            if key in self._done:
                return self._done[key], True
        return self._latest.get(uri, []), False

    def _resolve(self, key: tuple[str, int, int], text: str, ctx: CursorContext) -> list[str]:
        try:
            found = python_definitions(text, ctx.path, ctx)
        except Exception as error:
            log.debug("jedi failed for %s: %s", ctx.path, error)
            found = []
        with self._lock:
            self._done[key] = found
            while len(self._done) > 64:
                self._done.popitem(last=False)
            self._latest[key[0]] = found
            self._pending.pop(key[0], None)
        return found

    def header(self, uri: str, text: str, ctx: CursorContext, documents: Mapping[str, str],
               wait_s: float = TYPING_WAIT_S, refresh: bool = False) -> tuple[str, bool]:
        """The commented header for the prompt at `ctx`, and whether jedi had answered for
        this version. It stays the same while the prefix window starts on the same line,
        unless `refresh` (an explicit invocation, or the background prefill after a
        pause, which then keeps the newer one)."""
        kept = self._headers.get(uri)
        if kept is not None and kept[0] == ctx.prefix_start_line and not refresh:
            return kept[1], kept[2]
        others = {path: source for path, source in documents.items() if path != ctx.path}
        self.similar.forget(set(others))
        definitions, complete = self.definitions(uri, text, ctx, wait_s)
        # The lines before the cursor (more than the prefix window may hold).
        lines = text.split("\n")
        above = lines[max(0, ctx.line - WINDOW_LINES) : ctx.line]
        query = "\n".join([*above, ctx.line_prefix])
        comment = "# " if ctx.language == "python" else "// "
        parts: list[str] = []
        used = 0
        block = []
        for line in definitions:
            if used + len(line) > DEFINITION_CHARS:
                continue
            block.append(comment + line)
            used += len(line) + len(comment) + 1
        if block:
            parts.append("\n".join([comment + "Names used here, as the repository defines "
                                    "them:", *block]))
        root = project_root(ctx.path) if ctx.path else ""
        for path, start, shown in self.similar.best(query, others, REPO_CONTEXT_CHARS - used):
            block = [f"{comment}Similar code in {_short(path, root)} (line {start + 1}):"]
            block.extend(comment + line for line in shown)
            parts.append("\n".join(block))
        # Other files' code changes less often than the names near the cursor: first.
        parts.reverse()
        header = "\n".join(parts) + "\n\n" if parts else ""
        self._headers[uri] = (ctx.prefix_start_line, header, complete)
        return header, complete

    def forget(self, uri: str) -> None:
        self._headers.pop(uri, None)
        self._latest.pop(uri, None)
