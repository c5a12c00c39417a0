"""Every post-processing rule against its golden cases (tests/golden/postprocess.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from companion.engine.context import build_context, split_lines
from companion.engine.postprocess import FILTERS_BY_NAME, PostContext, clean, is_finished

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "golden" / "postprocess.json").read_text(encoding="utf-8")
)["cases"]


def post_context(document: str) -> PostContext:
    before, _, _ = document.partition("█")
    lines = split_lines(before)
    text = document.replace("█", "")
    cursor = build_context(text, len(lines) - 1, len(lines[-1]))
    return PostContext(cursor)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_golden(case: dict[str, Any]) -> None:
    ctx = post_context(case["document"])
    if case["filter"] == "clean":
        result = clean(case["raw"], ctx)
        text, finished = result.text, result.finished
    else:
        text, finished = FILTERS_BY_NAME[case["filter"]](case["raw"], ctx)
    assert text == case["expected"]
    if "finished" in case:
        assert finished == case["finished"]


def test_every_filter_has_a_golden_case() -> None:
    named = {case["filter"] for case in CASES}
    missing = set(FILTERS_BY_NAME) - named - {"normalize_newlines", "trailing_whitespace"}
    assert not missing, f"filters without golden cases: {missing}"


def test_streaming_stops_once_the_block_has_ended() -> None:
    ctx = post_context("def f(x):\n    if x:\n        █")
    assert not is_finished("return 1", ctx)
    assert not is_finished("return 1\n", ctx)
    assert is_finished("return 1\n    return 2\n", ctx)


def test_streaming_mid_line_stops_at_the_first_newline() -> None:
    ctx = post_context("result = compute(█, 2)")
    assert not is_finished("1", ctx)
    assert is_finished("1\n", ctx)
