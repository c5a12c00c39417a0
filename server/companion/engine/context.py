"""The text around the cursor: prefix and suffix windows within a character budget.

Positions are LSP positions (UTF-16 code units). The prefix window starts on a line
boundary that moves in steps of `STEP_LINES`, so while the user types, the start of the
prompt stays put and the engine's prefix cache keeps working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STEP_LINES = 32
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
CLOSERS = ")]}\"'`:;,"


class PositionError(ValueError):
    """A position outside the document."""


def split_lines(text: str) -> list[str]:
    """Lines as LSP counts them (\\n, \\r\\n and \\r end a line), without their breaks."""
    return _LINE_BREAK.split(text)


def _units(char: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(char.encode("utf-8"))
    if encoding == "utf-32":
        return 1
    return 2 if ord(char) > 0xFFFF else 1


def code_units(text: str, encoding: str = "utf-16") -> int:
    """The length of `text` in `encoding` code units (LSP's columns)."""
    return sum(_units(char, encoding) for char in text)


def utf16_to_index(line: str, character: int, encoding: str = "utf-16") -> int:
    """The str index of column `character` (in `encoding` code units, UTF-16 by LSP's
    default) in `line`, clamped to the line end."""
    if character <= 0:
        return 0
    units = 0
    for index, char in enumerate(line):
        if units >= character:
            return index
        units += _units(char, encoding)
    return len(line)


def index_to_utf16(line: str, index: int) -> int:
    """The UTF-16 column of str index `index` in `line`."""
    return sum(2 if ord(char) > 0xFFFF else 1 for char in line[:index])


@dataclass(frozen=True)
class CursorContext:
    """Everything the prompt and the post-processing need to know about the cursor."""

    prefix: str  # window before the cursor, starting on a line boundary
    suffix: str  # window after the cursor, ending on a line boundary
    line_prefix: str  # the cursor's line up to the cursor
    line_suffix: str  # the cursor's line after the cursor
    line: int
    column: int  # str index in the line (not UTF-16)
    prefix_start_line: int
    language: str = "python"
    path: str = ""

    @property
    def indent(self) -> str:
        """The leading whitespace of the cursor's line (up to the cursor)."""
        stripped = self.line_prefix.lstrip()
        return self.line_prefix[: len(self.line_prefix) - len(stripped)]

    @property
    def mid_line(self) -> bool:
        """Text after the cursor on this line that is more than auto-closed brackets."""
        rest = self.line_suffix.strip()
        return bool(rest) and any(char not in CLOSERS for char in rest)

    @property
    def mode(self) -> str:
        """"inline" (finish this line only), "line" (finish it; a block it opens too)
        or "block" (an empty line: statements up to the end of the enclosing block)."""
        if self.mid_line:
            return "inline"
        if self.line_prefix.strip() == "":
            return "block"
        return "line"


def build_context(
    text: str,
    line: int,
    character: int,
    prefix_chars: int = 4000,
    suffix_chars: int = 1000,
    language: str = "python",
    path: str = "",
    encoding: str = "utf-16",
    step_lines: int = STEP_LINES,
) -> CursorContext:
    """The cursor context at LSP position (line, character) of `text`.

    The prefix starts on a multiple of `step_lines`, so it moves in steps of that many
    lines while the cursor moves down.

    Raises PositionError when `line` is outside the document; a `character` past the
    end of its line means the line end, as the LSP specification says.
    """
    lines = split_lines(text)
    if line < 0 or line >= len(lines) or character < 0:
        raise PositionError(f"position {line}:{character} outside a {len(lines)}-line document")
    current = lines[line]
    column = utf16_to_index(current, character, encoding)
    line_prefix, line_suffix = current[:column], current[column:]

    # Prefix: whole lines above, from a start line that moves in STEP_LINES steps.
    budget = max(0, prefix_chars - len(line_prefix))
    start = line
    used = 0
    while start > 0 and used + len(lines[start - 1]) + 1 <= budget:
        start -= 1
        used += len(lines[start]) + 1
    if start > 0:
        start = min(line, -(-start // step_lines) * step_lines)
    prefix = "\n".join([*lines[start:line], line_prefix])
    if len(prefix) > prefix_chars:  # one enormous line: keep its end
        prefix = prefix[-prefix_chars:]

    suffix_lines = [line_suffix]
    used = len(line_suffix)
    for following in lines[line + 1 :]:
        if used + len(following) + 1 > suffix_chars:
            break
        suffix_lines.append(following)
        used += len(following) + 1
    suffix = "\n".join(suffix_lines)[:suffix_chars]
    return CursorContext(
        prefix=prefix,
        suffix=suffix,
        line_prefix=line_prefix,
        line_suffix=line_suffix,
        line=line,
        column=column,
        prefix_start_line=start,
        language=language,
        path=path,
    )
