"""The rule-based suggestions (no model) and the static snippets."""

from __future__ import annotations

import pytest

from companion.engine.templates import template_completion
from companion.lsp.snippets import snippets_for


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("if __na", 'me__ == "__main__":\n    ...'),
        ("def main():\n    pass\n\nif __name__", ' == "__main__":\n    main()'),
        ("import numpy", " as np"),
        ("class Point:\n    def __init__(self, x: int, y: int = 0) -> None:\n        ",
         "self.x = x\n        self.y = y"),
        ("class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.",
         "y = y"),
        ("def test_parse():\n    ", "assert ..."),
        ("for item in ", "range(10):"),
        ("x = 1", ""),
    ],
)
def test_rules(prefix: str, expected: str) -> None:
    assert template_completion(prefix, "") == expected


def test_snippets_filter_by_word() -> None:
    assert [s.label for s in snippets_for("cla")] == ["class"]
    assert len(snippets_for("")) > 5
