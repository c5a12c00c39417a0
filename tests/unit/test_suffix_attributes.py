"""The attribute of self the class below a blank line needs (engine/suffix_attributes.py):
golden cases in tests/golden/needed_attributes.json, real installed files, and how
generation starts the model on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import rich.console

from companion.config import Settings
from companion.engine import suffix_attributes
from companion.engine.context import build_context
from companion.engine.generation import needed_start
from companion.engine.names_classes import base_attributes
from companion.engine.names_document import Document
from companion.engine.suffix_attributes import needed_attribute

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "golden" / "needed_attributes.json").read_text("utf-8")
)["cases"]


def _document(code: str) -> tuple[str, int]:
    lines = code.split("\n")
    row = next(index for index, line in enumerate(lines) if line.strip() == "<hole>")
    lines[row] = lines[row].replace("<hole>", "")
    return "\n".join(lines), row


def _in_file(document: str, row: int) -> suffix_attributes.Bases:
    """Base classes as the file and the builtins tell them (imported ones: unknown)."""
    doc = Document(document, row, document, True, True)
    return lambda base: base_attributes(doc, base)


def _blank(path: str, statement: str) -> tuple[str, int]:
    """A real file with the line that holds `statement` blanked (its indentation kept)."""
    lines = Path(path).read_text("utf-8").split("\n")
    row = next(index for index, line in enumerate(lines) if line.strip() == statement)
    lines[row] = lines[row][: len(lines[row]) - len(lines[row].lstrip())]
    return "\n".join(lines), row


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_golden(case: dict[str, Any]) -> None:
    document, row = _document(case["code"])
    assert needed_attribute(document, row, _in_file(document, row)) == case["needed"]


def test_only_a_blank_line_gets_a_hint() -> None:
    document, row = _document(CASES[0]["code"])
    lines = document.split("\n")
    lines[row] += "x"
    assert needed_attribute("\n".join(lines), row, _in_file(document, row)) is None
    assert needed_attribute(document, len(lines) + 3, _in_file(document, row)) is None


def test_a_real_file_with_an_imported_base_class() -> None:
    """httpx's WSGIByteStream (base SyncByteStream, imported): `self._close = ...` blanked
    in __init__; close() reads it. The base's attributes decide: unknown → no hint; known
    and without `_close` → the hint; known and with it → none."""
    path = str(Path(httpx.__file__).parent / "_transports" / "wsgi.py")
    document, row = _blank(path, 'self._close = getattr(result, "close", None)')
    assert needed_attribute(document, row, lambda base: None) is None
    assert needed_attribute(document, row, lambda base: {"read", "close"}) == "_close"
    assert needed_attribute(document, row, lambda base: {"_close"}) is None


def test_a_real_file_with_a_long_class() -> None:
    """rich's Console (2000 lines): the render-hook list blanked in __init__."""
    document, row = _blank(rich.console.__file__, "self._render_hooks: List[RenderHook] = []")
    assert needed_attribute(document, row, _in_file(document, row)) == "_render_hooks"


def test_generation_starts_the_model_on_it_after_the_bare_names() -> None:
    """needed_start: `self.x =` where no bare name is needed; the bare name first."""
    document, row = _document(CASES[0]["code"])
    indent = len(document.split("\n")[row])
    ctx = build_context(document, row, indent, path="/work/stream.py")
    assert needed_start(Settings(), ctx, document, fim=False) == "self._close ="
    assert needed_start(Settings(), ctx, document, fim=False, automatic=False) == "self._close ="
    assert needed_start(Settings(needed_name=False), ctx, document, fim=False) == ""
    assert needed_start(Settings(), ctx, document, fim=True) == ""
    # A bare name the lines below need goes first (suffix_names.py).
    lines = document.split("\n")
    lines.insert(row + 1, "        self.total = count * 2")
    both = "\n".join(lines)
    ctx = build_context(both, row, indent, path="/work/stream.py")
    assert needed_start(Settings(), ctx, both, fim=False) == "count ="


def test_an_imported_base_class_is_asked_of_jedi() -> None:
    """The server's path: httpx's SyncByteStream (imported by wsgi.py) resolved by jedi on
    its thread; a lookup not done in time is no hint, a later request finds it known."""
    path = str(Path(httpx.__file__).parent / "_transports" / "wsgi.py")
    document, row = _blank(path, 'self._close = getattr(result, "close", None)')
    indent = len(document.split("\n")[row])
    ctx = build_context(document, row, indent, path=path)
    found = ""
    for _ in range(20):
        found = suffix_attributes.needed_self_attribute(ctx, document, wait_s=1.0)
        if found:
            break
    assert found == "self._close"
