"""Loop detection: has the model started to repeat itself?

A small model that loses its way repeats a short unit (`_mac_mac_mac`, `))))))`) until
the token budget runs out. Valid code repeats characters too, and those must survive:
numbers (`1000000000`), hex and bit masks (`0xFFFFFFFF`, `0b1010101010101010`),
separator comments (`# --------`, `// ========`) and literals (`"=" * 8` written out as
`"========"`). So:

- a run inside a number literal is never a loop (up to `MAX_NUMBER` characters);
- one repeated character is a loop only past `MAX_SINGLE_RUN` (a separator line is
  shorter), and so is a unit made only of punctuation (`-=-=-=`);
- a unit of 2-4 characters with a letter or digit in it, eight times in a row, is a loop,
  and so is a unit of 5-16 characters four times in a row.

Where a loop is cut inside a string, the cut moves back to the start of that line, so
that the suggestion never ends in an unterminated string.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from companion.engine.blocks import CLOSER_LINE

if TYPE_CHECKING:
    from companion.engine.postcontext import PostContext

MAX_SINGLE_RUN = 80  # characters: longer than any separator line we keep
MAX_NUMBER = 40  # a digit run longer than this is no number anyone writes
LONG_LINE = 16  # a line this long written twice in a row is a loop (shorter ones: three)
_SHORT_RUN = re.compile(r"(\S{1,4}?)\1{7,}")
_LONG_RUN = re.compile(r"(\S{5,16}?)\1{3,}")  # "_macos_macos_macos_macos"
_NUMBER = re.compile(
    r"(?<![\w.])(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|\d[\d_]*(?:\.\d[\d_]*)?"
    r"(?:[eE][+-]?\d+)?)[uUlLfFdDmMnif0-9_]*"
)


def _in_number(text: str, start: int, end: int) -> bool:
    for number in _NUMBER.finditer(text, max(0, start - MAX_NUMBER), end + 1):
        if number.start() <= start and end <= number.end():
            return number.end() - number.start() <= MAX_NUMBER
    return False


def _is_loop(text: str, run: re.Match[str]) -> bool:
    unit = run.group(1)
    if _in_number(text, run.start(), run.end()):
        return False
    if len(set(unit)) == 1 or not any(char.isalnum() for char in unit):
        return run.end() - run.start() > MAX_SINGLE_RUN
    return True


def loop_start(text: str) -> int | None:
    """The index where the model starts looping in `text`, or None."""
    starts = [
        run.start()
        for pattern in (_SHORT_RUN, _LONG_RUN)
        for run in pattern.finditer(text)
        if _is_loop(text, run)
    ]
    return min(starts) if starts else None


def looping(text: str) -> bool:
    """While streaming: has the model started to repeat itself?"""
    return loop_start(text) is not None


def _inside_string(line: str) -> bool:
    """Does `line` end inside a string (an odd number of unescaped quotes of a kind)?"""
    quote = ""
    index = 0
    while index < len(line):
        char = line[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        index += 1
    return bool(quote)


def cut_loop(text: str) -> tuple[str, bool]:
    """`text` up to where it starts looping, never ending inside a string."""
    start = loop_start(text)
    if start is None:
        return text, False
    line_start = text.rfind("\n", 0, start) + 1
    if _inside_string(text[line_start:start]):
        start = line_start
    return text[:start].rstrip(), True


def repetition(text: str, ctx: PostContext) -> tuple[str, bool]:
    """Cut where the model loops (a short unit repeated eight times
    or more in a row, a longer one four times, never inside a number and never a
    separator line), a non-trivial line repeated twice in a row, or a first line that
    repeats the line right above the cursor."""
    text, cut = cut_loop(text)
    if cut:
        return text, True
    lines = text.split("\n")
    above = [line for line in ctx.cursor.prefix.split("\n")[:-1] if line.strip()]
    if (
        ctx.cursor.mode == "block"
        and above
        and lines[0].strip()
        and lines[0].strip() == above[-1].strip()
        and len(lines[0].strip()) > 3
        and not CLOSER_LINE.match(lines[0].strip())
    ):
        return "", True
    for index in range(1, len(lines)):
        line = lines[index].strip()
        if line != lines[index - 1].strip() or len(line) <= 3:
            continue
        if len(line) >= LONG_LINE or (index >= 2 and line == lines[index - 2].strip()):
            return "\n".join(lines[: index if len(line) >= LONG_LINE else index - 1]), True
    return text, False
