"""Hovers in every language: definitions, signatures and doc comments from the tree
(tests/golden/definitions.json), and the explanation prompt in the language's name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from companion.engine.explain import (
    explanation_question,
    find_definition,
    selection_question,
    static_markdown,
)
from companion.engine.explanations import explain_prompt_text
from companion.engine.prompts import chat_prompt

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "golden" / "definitions.json").read_text(encoding="utf-8")
)["cases"]


def _at(document: str) -> tuple[str, int, int]:
    before, _, after = document.partition("█")
    lines = before.split("\n")
    return before + after, len(lines) - 1, len(lines[-1])


@pytest.mark.parametrize("case", CASES, ids=[f"{c['language']}: {c['name']}" for c in CASES])
def test_definition(case: dict[str, Any]) -> None:
    text, line, column = _at(case["document"])
    definition = find_definition(text, line, column, case["language"])
    expected = case["expected"]
    if expected is None:
        assert definition is None
        return
    assert definition is not None
    for field, value in expected.items():
        assert getattr(definition, field) == value, field


def test_the_hover_and_the_prompt_name_the_language() -> None:
    text, line, column = _at(next(c for c in CASES if c["language"] == "go")["document"])
    definition = find_definition(text, line, column, "go", "/src/sum.go")
    assert definition is not None
    markdown = static_markdown(definition, "/src/sum.go")
    assert markdown.startswith("```go\nfunc Sum(xs []int) int\n```")
    assert "sum.go:5" in markdown
    assert "Sum adds the numbers." in markdown
    question = explanation_question(definition)
    assert question == "Explain briefly what this Go function does."
    user = explain_prompt_text(definition, definition.source, question)
    assert "```go\nfunc Sum" in user
    assert "_ = Sum(nil)" in user  # where it is used
    prompt = chat_prompt("qwen2.5-coder", user, language="Go")
    assert "You are a concise Go expert." in prompt.text


def test_a_selection_is_explained_in_its_language() -> None:
    assert selection_question("typescriptreact") == (
        "Explain briefly what this TypeScript (TSX) code does.")
    assert selection_question("", "/x/build.rs") == "Explain briefly what this Rust code does."
    assert "```rust\nfn f() {}\n```" in explain_prompt_text(None, "fn f() {}", "Why?", "rust")


def test_python_keeps_its_own_reader() -> None:
    text = 'def f(x):\n    """Doubles."""\n    return 2 * x\n\ny = f(2)\n'
    definition = find_definition(text, 4, 4)
    assert definition is not None and definition.docstring == "Doubles."
    assert static_markdown(definition).startswith("```python\ndef f(x):")
