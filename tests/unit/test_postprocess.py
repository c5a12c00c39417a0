"""Every post-processing rule against its golden cases: tests/golden/postprocess.json
(Python and the rules every language shares) and tests/golden/languages/*.json (one
file per language)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from companion.engine.brackets import leaves_balanced
from companion.engine.context import build_context, split_lines
from companion.engine.languages import spec_for
from companion.engine.postprocess import (
    FILTERS_BY_NAME,
    PostContext,
    clean,
    is_finished,
    looping,
)

GOLDEN = Path(__file__).parents[1] / "golden"
LANGUAGE_FILES = sorted((GOLDEN / "languages").glob("*.json"))
# Each language's file covers at least these situations (the `kind` of a case).
REQUIRED_KINDS = {"empty-block", "mid-line", "unclosed-bracket", "suffix-overlap"}
GOLDEN_LANGUAGES = {"python", "javascript", "typescript", "tsx", "go", "rust", "java", "c",
                    "cpp", "csharp", "ruby", "php", "shell"}


def _load(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    language = data.get("language", "python")
    return [{"language": language, **case} for case in data["cases"]]


CASES: list[dict[str, Any]] = [
    case for path in [GOLDEN / "postprocess.json", *LANGUAGE_FILES] for case in _load(path)
]


def post_context(document: str, language: str = "python") -> PostContext:
    before, _, _ = document.partition("█")
    lines = split_lines(before)
    text = document.replace("█", "")
    cursor = build_context(text, len(lines) - 1, len(lines[-1]), language=language)
    return PostContext(cursor)


@pytest.mark.parametrize("case", CASES, ids=[f"{c['language']}: {c['name']}" for c in CASES])
def test_golden(case: dict[str, Any]) -> None:
    ctx = post_context(case["document"], case["language"])
    if case["filter"] == "clean":
        result = clean(case["raw"], ctx)
        text, finished = result.text, result.finished
    else:
        text, finished = FILTERS_BY_NAME[case["filter"]](case["raw"], ctx)
    assert text == case["expected"]
    if "finished" in case:
        assert finished == case["finished"]
    if "looping" in case:
        assert looping(case["raw"]) == case["looping"]


@pytest.mark.parametrize("case", [c for c in CASES if c["filter"] == "clean"],
                         ids=[f"{c['language']}: {c['name']}" for c in CASES
                              if c["filter"] == "clean"])
def test_golden_suggestions_leave_brackets_balanced(case: dict[str, Any]) -> None:
    """A suggestion never leaves the document with more brackets open than before."""
    spec = spec_for(case["language"])
    assert leaves_balanced(case["document"], case["expected"], "█", spec)


def test_every_filter_has_a_golden_case() -> None:
    named = {case["filter"] for case in CASES}
    missing = set(FILTERS_BY_NAME) - named - {"normalize_newlines", "trailing_whitespace"}
    assert not missing, f"filters without golden cases: {missing}"


def test_every_golden_language_has_the_required_cases() -> None:
    kinds: dict[str, set[str]] = {}
    for case in CASES:
        kinds.setdefault(case["language"], set()).add(case.get("kind", ""))
    for language in GOLDEN_LANGUAGES:
        missing = REQUIRED_KINDS - kinds.get(language, set())
        assert not missing, f"{language} lacks golden cases for {missing}"


def test_streaming_stops_once_the_block_has_ended() -> None:
    ctx = post_context("def f(x):\n    if x:\n        █")
    assert not is_finished("return 1", ctx)
    assert not is_finished("return 1\n", ctx)
    assert is_finished("return 1\n    return 2\n", ctx)


def test_streaming_mid_line_stops_at_the_first_newline() -> None:
    ctx = post_context("result = compute(█, 2)")
    assert not is_finished("1", ctx)
    assert is_finished("1\n", ctx)


def test_streaming_in_braces_stops_once_the_block_has_ended() -> None:
    ctx = post_context("function f(x) {\n  if (x) {\n    █\n  }\n}\n", "javascript")
    assert not is_finished("return 1;\n", ctx)
    assert is_finished("return 1;\n  }\n  return 2;\n", ctx)


@pytest.mark.parametrize("code", [
    "TIMEOUT_NS = 1000000000", "mask = 0xFFFFFFFF", "# --------", 'print("=" * 8)',
    'RULE = "========"', "x = 0b1010101010101010", "// " + "=" * 76,
])
def test_valid_code_is_not_a_loop(code: str) -> None:
    assert not looping(code)
