"""Cursor context: UTF-16 positions, windows on line boundaries, modes."""

from __future__ import annotations

import pytest

from companion.engine.context import (
    STEP_LINES,
    PositionError,
    build_context,
    index_to_utf16,
    split_lines,
    utf16_to_index,
)


def test_lines_split_like_lsp() -> None:
    assert split_lines("a\r\nb\rc\nd") == ["a", "b", "c", "d"]
    assert split_lines("a\u2028b") == ["a\u2028b"]  # not a line break in LSP


def test_utf16_columns_count_astral_characters_twice() -> None:
    line = "x = '😀' + y"
    index = line.index("+")
    assert utf16_to_index(line, index_to_utf16(line, index)) == index
    assert index_to_utf16(line, index) == index + 1
    assert utf16_to_index(line, 999) == len(line)  # past the end means the end


def test_utf8_and_utf32_columns() -> None:
    line = "é = 1"
    assert utf16_to_index(line, 2, "utf-8") == 1
    assert utf16_to_index(line, 1, "utf-32") == 1


def test_prefix_and_suffix_around_the_cursor() -> None:
    ctx = build_context("def f(x):\n    return x + 1\n", 1, 12)
    assert ctx.prefix == "def f(x):\n    return x"
    assert ctx.suffix.startswith(" + 1\n")
    assert ctx.line_prefix == "    return x"
    assert ctx.line_suffix == " + 1"
    assert ctx.mode == "inline"


@pytest.mark.parametrize(
    ("text", "line", "character", "mode"),
    [
        ("def f():\n    ", 1, 4, "block"),
        ("x = ", 0, 4, "line"),
        ("print()", 0, 6, "line"),  # only an auto-closed paren after the cursor
        ("f(a, b)", 0, 2, "inline"),
    ],
)
def test_modes(text: str, line: int, character: int, mode: str) -> None:
    assert build_context(text, line, character).mode == mode


def test_out_of_range_line_is_an_error() -> None:
    with pytest.raises(PositionError):
        build_context("one line", 5, 0)
    with pytest.raises(PositionError):
        build_context("one line", -1, 0)


def test_prefix_window_starts_on_a_stable_line() -> None:
    text = "\n".join(f"value_{i} = {i}" for i in range(400))
    starts = set()
    for character in range(1, 10):
        ctx = build_context(text, 399, character, prefix_chars=2000)
        starts.add(ctx.prefix_start_line)
        assert len(ctx.prefix) <= 2000
    assert len(starts) == 1
    assert starts.pop() % STEP_LINES == 0


def test_one_huge_line_keeps_its_end() -> None:
    text = "x" * 100_000
    ctx = build_context(text, 0, 100_000, prefix_chars=1000)
    assert len(ctx.prefix) == 1000
