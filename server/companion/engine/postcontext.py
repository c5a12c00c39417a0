"""What the post-processing filters know about a request: the cursor context, and what
follows from it, each computed once per request on first use: the language's spec, the
brackets open at the cursor and those the code after it closes, the lexer's state there
(code, string or comment), the tree's view of the situation, the document's syntax error
count, its indentation step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from companion.engine import blocks, syntax
from companion.engine.brackets import (
    OPENERS,
    LexState,
    Opened,
    not_closed_by_suffix,
    open_brackets,
    unmatched_closers,
)
from companion.engine.context import CursorContext
from companion.engine.languages import LanguageSpec, spec_for

STATEMENT_WINDOW_LINES = 30  # how far back the brackets open at the cursor are read
INDENT_UNIT = 4


def indent_width(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


@dataclass(frozen=True)
class PostContext:
    """What the filters know: the cursor context, and what follows from it (computed
    once per request, on first use)."""

    cursor: CursorContext

    @cached_property
    def spec(self) -> LanguageSpec:
        return spec_for(self.cursor.language, self.cursor.path)

    @cached_property
    def _before(self) -> tuple[list[Opened], LexState]:
        window = "\n".join(self.cursor.prefix.split("\n")[-STATEMENT_WINDOW_LINES:])
        return open_brackets(window, self.spec)

    @property
    def open_before(self) -> list[Opened]:
        """The brackets open at the cursor (read over the last lines of the prefix)."""
        return self._before[0]

    @property
    def lex_state(self) -> LexState:
        """The lexer's state at the cursor: in code, a string or a comment."""
        return self._before[1]

    @cached_property
    def closable(self) -> list[Opened]:
        """The brackets open at the cursor that the suggestion may close: those the code
        after the cursor does not close already."""
        open_before, state = self._before
        return not_closed_by_suffix(
            open_before, unmatched_closers(self.cursor.suffix, self.spec, state))

    @property
    def statement_open(self) -> list[tuple[str, str, bool]]:
        """Brackets the cursor's own line opened that nothing after the cursor closes:
        the statement being written, which the suggestion should finish."""
        if not self.cursor.line_prefix.strip():
            return []
        last = len(self.cursor.prefix.split("\n")[-STATEMENT_WINDOW_LINES:]) - 1
        return [(OPENERS[opened.char], self.cursor.indent, opened.ends_line)
                for opened in self.closable if opened.line == last]

    @cached_property
    def situation(self) -> syntax.Situation:
        return syntax.situation(
            self.spec, self.cursor.prefix, self.cursor.suffix, self.cursor.line_prefix)

    @property
    def single_line(self) -> bool:
        """In a line comment or a one-line string: finish that line only."""
        state = self.lex_state
        one_line = state.comment == "\n" or (
            len(state.quote) == 1 and state.quote not in self.spec.multiline_quotes)
        return one_line and self.situation.single_line

    @property
    def keyword_closed_below(self) -> bool:
        """Does the code below close the cursor's keyword block (`end`, `fi`) already:
        is the first line below that is less indented than the cursor a closer?"""
        if self.spec.blocks != "keywords":
            return False
        width = len(self.cursor.line_prefix if not self.cursor.line_prefix.strip()
                    else self.cursor.indent)
        for line in self.cursor.suffix.split("\n")[1:]:
            if line.strip() and indent_width(line) < width:
                return blocks.keyword_delta(line, self.spec) < 0
        return False

    @cached_property
    def baseline_errors(self) -> int | None:
        return syntax.errors_in(self.spec, self.cursor.prefix + self.cursor.suffix)

    @cached_property
    def indent_unit(self) -> int:
        """The document's indentation step in spaces (4 when it does not tell)."""
        widths = {
            len(line) - len(line.lstrip(" "))
            for line in self.cursor.prefix.split("\n")
            if line.strip() and line.startswith(" ")
        }
        return min(widths) if widths and min(widths) in (2, 3, 4, 8) else INDENT_UNIT
