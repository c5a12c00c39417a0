"""The name the code below a blank line needs (engine/suffix_names.py): golden cases in
tests/golden/needed_names.json, and how generation starts the model on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from companion.config import Settings
from companion.engine.context import build_context
from companion.engine.generation import needed_start, typed_context, with_typed
from companion.engine.prompts import build_prompt
from companion.engine.suffix_names import needed_name

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "golden" / "needed_names.json").read_text("utf-8"))["cases"]


def _document(code: str) -> tuple[str, int]:
    lines = code.split("\n")
    row = next(index for index, line in enumerate(lines) if line.strip() == "<hole>")
    lines[row] = lines[row].replace("<hole>", "")
    return "\n".join(lines), row


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_golden(case: dict[str, Any]) -> None:
    document, row = _document(case["code"])
    assert needed_name(document, row) == case["needed"]


def test_only_a_blank_line_gets_a_hint() -> None:
    document, row = _document(CASES[0]["code"])
    lines = document.split("\n")
    lines[row] += "x"
    assert needed_name("\n".join(lines), row) is None
    assert needed_name(document, len(lines) + 3) is None  # past the end


def test_the_model_starts_on_the_name_as_if_typed() -> None:
    document, row = _document(CASES[0]["code"])
    indent = len(document.split("\n")[row])
    ctx = build_context(document, row, indent, path="/work/wait.py")
    typed = needed_start(Settings(), ctx, document, fim=False)
    assert typed == "endtime ="
    started = typed_context(ctx, typed)
    assert started.line_prefix == "    endtime =" and started.column == indent + len(typed)
    assert started.suffix == ctx.suffix and started.line == ctx.line
    prompt = build_prompt(started, "smollm2", False)
    assert prompt.text.endswith("def wait(ready, timeout):\n    endtime =") and not prompt.heal
    # Off, for a FIM model (it reads the code below itself), or another language: none.
    assert needed_start(Settings(needed_name=False), ctx, document, fim=False) == ""
    assert needed_start(Settings(), ctx, document, fim=True) == ""
    js = build_context(document, row, indent, language="javascript", path="/work/wait.js")
    assert needed_start(Settings(), js, document, fim=False) == ""


def test_the_suggestion_says_the_name_once() -> None:
    assert with_typed("endtime =", " time() + timeout") == "endtime = time() + timeout"
    # A model (or a cached answer) that writes the start again: not twice.
    assert with_typed("endtime =", " endtime = time()") == "endtime = time()"
    assert with_typed("endtime =", "  ") == ""  # nothing written: no suggestion
    assert with_typed("", " x") == " x"
