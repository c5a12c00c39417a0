"""What the name check knows of the document (`names.py`): the cursor window, and the
whole text when the caller has it, else the saved file (cached by modification time and
size: imports and definitions above the window must be seen). Without either, bare names
are judged only when the window starts at the top of the file; a `from m import *` or
`globals()` in the document means they are not judged at all.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from companion.engine.context import CursorContext

MAX_DISK_BYTES = 2_000_000

NAME = re.compile(r"(?<![.\w])([^\W\d]\w*)")  # a name, not after a `.`
_STAR_IMPORT = re.compile(r"^\s*from\s+\S+\s+import\s+\*", re.MULTILINE)

_disk_lock = threading.Lock()
_disk: OrderedDict[str, tuple[tuple[int, int], str]] = OrderedDict()


def disk_text(path: str) -> str:
    """The saved file at `path` ("" when there is none), cached by mtime and size."""
    if not path:
        return ""
    try:
        stat = os.stat(path)
    except OSError:
        return ""
    key = (stat.st_mtime_ns, stat.st_size)
    with _disk_lock:
        cached = _disk.get(path)
        if cached is not None and cached[0] == key:
            _disk.move_to_end(path)
            return cached[1]
    if stat.st_size > MAX_DISK_BYTES:
        return ""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    with _disk_lock:
        _disk[path] = (key, text)
        while len(_disk) > 16:
            _disk.popitem(last=False)
    return text


@dataclass
class Document:
    """What the checker knows of the document: the window, and the whole text if any."""

    window: str  # prefix + suffix
    cursor_line: int  # the cursor's line in `window`
    whole: str  # the whole document ("" when not known)
    bare_judged: bool  # are bare names judged at all
    window_to_end: bool  # the window runs to the end of the document

    @classmethod
    def of(cls, ctx: CursorContext, document: str = "") -> Document:
        window = ctx.prefix + ctx.suffix
        whole = document or disk_text(ctx.path)
        bare = bool(document or whole or ctx.prefix_start_line == 0)
        if _dynamic_names(window) or (whole and _dynamic_names(whole)):
            bare = False
        to_end = bool(document) and document.endswith(ctx.suffix)
        return cls(window, ctx.prefix.count("\n"), whole, bare, to_end)

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.window, self.whole) if self.whole else (self.window,)

    def names(self) -> set[str]:
        found: set[str] = set()
        for text in self.texts:
            found |= names_in(text)
        return found


@functools.lru_cache(maxsize=8)
def _dynamic_names(text: str) -> bool:
    """A star import or `globals()`: names that the text does not spell may exist."""
    return "globals()" in text or bool(_STAR_IMPORT.search(text))


@functools.lru_cache(maxsize=8)
def names_in(text: str) -> frozenset[str]:
    """Every name `text` spells (not after a `.`); cached: the saved file comes back as
    the same string object while it is unchanged."""
    return frozenset(NAME.findall(text))


@functools.lru_cache(maxsize=8)
def lines_of(text: str) -> list[str]:
    return text.split("\n")


def indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))
