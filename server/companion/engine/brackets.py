"""Brackets outside strings and comments, language by language.

A small lexer, not the syntax tree: it has to read half-written code (a suggestion that
stops mid-string, a prefix window that starts mid-block) the same way every time, and the
lexer state at the end of the prefix says whether the suggestion starts in code, in a
string or in a comment. Continue's rule rests on it: a suggestion closes what it opened
itself, and a bracket opened before the cursor only when the suffix does not close it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from companion.engine.languages import LanguageSpec

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSING = {closer: opener for opener, closer in OPENERS.items()}
_RUST_CHAR = re.compile(r"'(?:\\[^']{1,10}|[^'\\\n])'")


@dataclass
class LexState:
    """Where the lexer is: in code, in a string (its delimiter) or in a comment (what
    ends it: the block comment's closer, or a newline)."""

    quote: str = ""
    comment: str = ""

    def copy(self) -> LexState:
        return LexState(self.quote, self.comment)

    @property
    def in_code(self) -> bool:
        return not self.quote and not self.comment


@dataclass
class Scan:
    """The brackets of one piece of code, with their indices, and the state after it."""

    brackets: list[tuple[int, str]] = field(default_factory=list)
    state: LexState = field(default_factory=LexState)
    comment_at: int = -1  # where the first line comment starts, -1 without one


_SHELL_WORD_START = " \t\n;|&()<>"


def _line_comment_at(code: str, index: int, spec: LanguageSpec, previous: str) -> str:
    """The line comment marker starting at `index`, or "". `previous` is the character
    before `code` (what the cursor follows)."""
    for marker in (spec.line_comment, *spec.more_line_comments):
        if not marker or not code.startswith(marker, index):
            continue
        # In the shell `#` starts a comment only at the start of a word (`$#`, `${#x}`).
        before = code[index - 1] if index else previous
        if spec.id != "shell" or not before or before in _SHELL_WORD_START:
            return marker
    return ""


def code_part(line: str, spec: LanguageSpec, state: LexState | None = None) -> str:
    """`line` without its trailing line comment."""
    at = scan(line, spec, state).comment_at
    return line if at < 0 else line[:at]


def scan(code: str, spec: LanguageSpec, state: LexState | None = None,
         previous: str = "") -> Scan:
    """The brackets in `code` outside strings and comments, starting from `state`;
    `previous` is the character before `code` ("" at the start of a line)."""
    state = state.copy() if state is not None else LexState()
    found: list[tuple[int, str]] = []
    comment_at = -1
    index, size = 0, len(code)
    while index < size:
        char = code[index]
        if state.comment:
            if state.comment == "\n":
                if char == "\n":
                    state.comment = ""
                index += 1
            elif code.startswith(state.comment, index):
                index += len(state.comment)
                state.comment = ""
            else:
                index += 1
            continue
        if state.quote:
            if char == "\\" and not (spec.id == "shell" and state.quote == "'"):
                index += 2
                continue
            if code.startswith(state.quote, index):
                index += len(state.quote)
                state.quote = ""
                continue
            if char == "\n" and len(state.quote) == 1 and char not in spec.multiline_quotes \
                    and state.quote not in spec.multiline_quotes:
                state.quote = ""  # an unterminated one-line string ends with its line
            index += 1
            continue
        marker = _line_comment_at(code, index, spec, previous)
        if marker:
            state.comment = "\n"
            comment_at = index if comment_at < 0 else comment_at
            index += len(marker)
            continue
        if spec.block_comment and code.startswith(spec.block_comment[0], index):
            state.comment = spec.block_comment[1]
            index += len(spec.block_comment[0])
            continue
        if char in spec.quotes:
            if spec.id == "rust" and char == "'":  # a char literal, or a lifetime ('a)
                literal = _RUST_CHAR.match(code, index)
                index = literal.end() if literal else index + 1
                continue
            triple = code[index : index + 3]
            quote = triple if spec.id == "python" and triple in ('"""', "'''") else char
            state.quote = quote
            index += len(quote)
            continue
        if char in OPENERS or char in CLOSING:
            found.append((index, char))
        index += 1
    return Scan(found, state, comment_at)


@dataclass(frozen=True)
class Opened:
    """A bracket left open: which, the indentation of its line, and whether it ends its
    line (a block-style opener, whose closer goes on a line of its own)."""

    char: str
    indent: int
    line: int  # line number within the scanned code
    ends_line: bool


def _line_starts(code: str) -> list[int]:
    starts = [0]
    starts.extend(index + 1 for index, char in enumerate(code) if char == "\n")
    return starts


def _line_of(starts: list[int], index: int) -> int:
    low, high = 0, len(starts) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if starts[middle] <= index:
            low = middle
        else:
            high = middle - 1
    return low


def _indent_at(code: str, start: int) -> int:
    end = start
    while end < len(code) and code[end] in " \t":
        end += 1
    return end - start


def open_brackets(code: str, spec: LanguageSpec) -> tuple[list[Opened], LexState]:
    """The brackets left open at the end of `code`, and the lexer state there. A closer
    that closes nothing means the window started inside something: start over."""
    result = scan(code, spec)
    starts = _line_starts(code)
    stack: list[Opened] = []
    for index, char in result.brackets:
        if char in OPENERS:
            line = _line_of(starts, index)
            end = starts[line + 1] - 1 if line + 1 < len(starts) else len(code)
            stack.append(Opened(char, _indent_at(code, starts[line]), line,
                                not code[index + 1 : end].strip()))
        elif stack and stack[-1].char == CLOSING[char]:
            stack.pop()
        else:
            stack.clear()
    return stack, result.state


def unmatched_closers(code: str, spec: LanguageSpec, state: LexState
                      ) -> list[tuple[str, int | None]]:
    """The closers in `code` that close nothing opened within it, in order, each with the
    indentation of its line when it starts that line: in a suffix, the brackets it
    closes for the code before the cursor."""
    depth: list[str] = []
    closers: list[tuple[str, int | None]] = []
    starts = _line_starts(code)
    for index, char in scan(code, spec, state).brackets:
        if char in OPENERS:
            depth.append(char)
        elif depth:
            depth.pop()
        else:
            line_start = starts[_line_of(starts, index)]
            first = not code[line_start:index].strip() and line_start > 0
            closers.append((char, _indent_at(code, line_start) if first else None))
    return closers


def not_closed_by_suffix(open_before: list[Opened],
                         suffix_closers: list[tuple[str, int | None]]) -> list[Opened]:
    """The brackets open before the cursor that the suffix leaves open, innermost last.

    The suffix's closers close the open brackets innermost first; a closer that starts
    its line less indented than an opener's line belongs further out (the function's
    `}` after `return items.map((x) => ({|`), so that opener stays open."""
    left: list[Opened] = []
    position = len(open_before) - 1
    for char, indent in suffix_closers:
        while position >= 0:
            opened = open_before[position]
            position -= 1
            if OPENERS[opened.char] == char and (indent is None or indent >= opened.indent):
                break
            left.append(opened)
        else:
            break
    left.extend(reversed(open_before[: position + 1]))
    return list(reversed(left))


def balance(code: str, spec: LanguageSpec) -> tuple[bool, int]:
    """(whether a closer closes nothing or the wrong bracket, how many stay open): how a
    document's brackets stand, for tests and benchmarks."""
    stack: list[str] = []
    for _, char in scan(code, spec).brackets:
        if char in OPENERS:
            stack.append(char)
        elif not stack or stack.pop() != CLOSING[char]:
            return True, len(stack)
    return False, len(stack)


def leaves_balanced(document: str, inserted: str, marker: str, spec: LanguageSpec) -> bool:
    """Does inserting `inserted` at `marker` in `document` leave its brackets no worse:
    no stray closer where there was none, no more brackets open than before?"""
    stray_before, open_before = balance(document.replace(marker, ""), spec)
    stray_after, open_after = balance(document.replace(marker, inserted), spec)
    return (stray_before or not stray_after) and open_after <= open_before
