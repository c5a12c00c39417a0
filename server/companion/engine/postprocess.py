"""Post-processing: small named filters that turn raw model output into ghost text.

Each filter takes the text and the cursor context and returns the new text and whether
it cut something off (a cut means the completion is finished, so streaming can stop).
Golden cases for every filter live in tests/golden/postprocess.json.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from companion.engine.context import CursorContext

MAX_LINES = 12
OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSING = {v: k for k, v in OPENERS.items()}
_DEFINITION = re.compile(r"^(?:async\s+)?(?:def|class)\s+(\w+)")
_CONTINUATIONS = re.compile(r"^(elif\b|else\b|except\b|finally\b|case\b)")


INDENT_UNIT = 4


@dataclass(frozen=True)
class PostContext:
    """What the filters know: the cursor context."""

    cursor: CursorContext


Filter = Callable[[str, PostContext], tuple[str, bool]]


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def normalize_newlines(text: str, ctx: PostContext) -> tuple[str, bool]:
    """\\r\\n and \\r become \\n; tabs stay (the document decides its indentation)."""
    return text.replace("\r\n", "\n").replace("\r", "\n"), False


def rebase_indent(text: str, ctx: PostContext) -> tuple[str, bool]:
    """On a blank line, the first line of ghost text starts at the cursor's column.

    A model that first ends the (blank) line and writes on the next one gets its empty
    lines dropped and the indentation already on screen removed (or nothing, when that
    next line is less indented than the cursor: the model left the block); a stray space
    (tokenizers split indentation oddly) is removed too, while a whole extra indentation
    level (the model going one block deeper) is kept.
    """
    if ctx.cursor.line_prefix.strip() or ctx.cursor.line_suffix.strip():
        return text, False
    lines = text.split("\n")
    if len(lines) > 1 and lines[0].strip() == "":
        while len(lines) > 1 and lines[0].strip() == "":
            lines.pop(0)
        first = lines[0]
        if first.strip() and _indent_width(first) < len(ctx.cursor.line_prefix):
            return "", True  # the model left the block the cursor is in
        lines[0] = first[len(ctx.cursor.line_prefix) :]
    extra = _indent_width(lines[0]) % INDENT_UNIT
    lines[0] = lines[0][extra:]
    return "\n".join(lines), False


def single_line_when_inline(text: str, ctx: PostContext) -> tuple[str, bool]:
    """Mid-line the suggestion finishes the line and nothing more."""
    if ctx.cursor.mode == "inline" and "\n" in text:
        return text.split("\n", 1)[0], True
    return text, False


def scope_end(text: str, ctx: PostContext) -> tuple[str, bool]:
    """Stop at the end of the statement or block the cursor is in.

    "line" mode keeps only the first line unless that line opens a block (ends with
    ':'), in which case the block's body comes too. "block" mode (an empty line) keeps
    statements at the cursor's level and deeper, up to a dedent; at the top level it
    stops at the first blank line, i.e. after one definition.
    """
    lines = text.split("\n")
    if len(lines) == 1:
        return text, False
    base = len(ctx.cursor.indent) if ctx.cursor.line_prefix.strip() else len(
        ctx.cursor.line_prefix
    )
    first = ctx.cursor.line_prefix + lines[0]
    opens_block = first.rstrip().endswith(":")
    if ctx.cursor.mode == "line" and not opens_block:
        return lines[0], True
    kept = [lines[0]]
    seen_body = False
    for line in lines[1:]:
        if line.strip() == "":
            if base == 0 and seen_body:
                return "\n".join(kept).rstrip("\n"), True
            kept.append(line)
            continue
        width = _indent_width(line)
        if ctx.cursor.mode == "line":  # the body of the block the line opened, no more
            continuation = width == base and _CONTINUATIONS.match(line.strip())
            if width <= base and not (continuation and seen_body):
                return "\n".join(kept).rstrip("\n"), True
        elif width < base:
            return "\n".join(kept).rstrip("\n"), True
        seen_body = True
        kept.append(line)
    return "\n".join(kept), False


def suffix_overlap(text: str, ctx: PostContext) -> tuple[str, bool]:
    """Never repeat what already follows the cursor.

    A line equal to the next non-blank line after the cursor ends the suggestion (the
    model is about to rewrite existing code), and the end of the first line is trimmed
    where it repeats the rest of the cursor's line (`foo(|)` + `x)` → `x`).
    """
    lines = text.split("\n")
    following = [
        line.strip() for line in ctx.cursor.suffix.split("\n")[1:] if line.strip()
    ]
    defined_below = {
        match.group(1) for line in following if (match := _DEFINITION.match(line))
    }
    cut = False
    # On a blank line the first line is a whole line too; elsewhere it ends the cursor's.
    start = 0 if ctx.cursor.mode == "block" else 1
    for index in range(start, len(lines)):
        line = lines[index].strip()
        definition = _DEFINITION.match(line)
        if line and (
            (following and line == following[0])
            or (definition and definition.group(1) in defined_below)
        ):
            lines = lines[:index] or [""]
            cut = True
            break
    while len(lines) > 1 and lines[-1].strip() == "":
        lines.pop()
    rest = ctx.cursor.line_suffix.rstrip()
    if rest and len(lines) == 1:
        first = lines[0]
        for size in range(len(rest), 0, -1):
            overlap = rest[:size]
            if first.endswith(overlap) and (
                (size == len(rest) and size > 1)
                or all(char in ")]}\"':;," for char in overlap)
            ):
                lines[0] = first[: len(first) - size]
                cut = True
                break
    if ctx.cursor.mode == "block" and lines and lines[0].strip() == "":
        return "", True
    return "\n".join(lines), cut


def _open_brackets(code: str) -> list[str]:
    """The brackets left open at the end of `code` (strings and comments skipped)."""
    stack: list[str] = []
    quote = ""
    index = 0
    while index < len(code):
        char = code[index]
        if quote:
            if char == "\\":
                index += 1
            elif code.startswith(quote, index):
                index += len(quote) - 1
                quote = ""
        elif char == "#":
            newline = code.find("\n", index)
            index = len(code) if newline < 0 else newline
            continue
        elif char in "\"'":
            quote = code[index : index + 3] if code[index : index + 3] in ('"""', "'''") else char
            index += len(quote) - 1
        elif char in OPENERS:
            stack.append(char)
        elif char in CLOSING:
            if stack and stack[-1] == CLOSING[char]:
                stack.pop()
            else:
                stack.clear()  # unbalanced code above: start over
        index += 1
    return stack


def bracket_balance(text: str, ctx: PostContext) -> tuple[str, bool]:
    """Cut at a closing bracket that closes nothing opened before it (`x))` in `f(|`)."""
    statement = "\n".join(ctx.cursor.prefix.split("\n")[-30:])
    stack = _open_brackets(statement)
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote and text[index - 1] != "\\":
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in OPENERS:
            stack.append(char)
        elif char in CLOSING:
            if stack and stack[-1] == CLOSING[char]:
                stack.pop()
            else:
                return text[:index].rstrip(), True
        elif char == "\n":
            quote = ""
    return text, False


_RUN = re.compile(r"(\S{1,4}?)\1{7,}")
_LONG_RUN = re.compile(r"(\S{5,16}?)\1{3,}")  # "_macos_macos_macos_macos"


def looping(text: str) -> bool:
    """While streaming: has the model started to repeat itself?"""
    return bool(_RUN.search(text) or _LONG_RUN.search(text))


def repetition(text: str, ctx: PostContext) -> tuple[str, bool]:
    """Cut where the model loops: a short unit repeated eight times or more in a row (a
    longer one four times), a non-trivial line repeated twice in a row, or a first line
    that repeats the line right above the cursor."""
    runs = [run for run in (_RUN.search(text), _LONG_RUN.search(text)) if run]
    if runs:
        return text[: min(run.start() for run in runs)].rstrip(), True
    lines = text.split("\n")
    above = [line for line in ctx.cursor.prefix.split("\n")[:-1] if line.strip()]
    if (
        ctx.cursor.mode == "block"
        and above
        and lines[0].strip()
        and lines[0].strip() == above[-1].strip()
        and len(lines[0].strip()) > 3
    ):
        return "", True
    for index in range(2, len(lines)):
        line = lines[index].strip()
        if len(line) > 3 and line == lines[index - 1].strip() == lines[index - 2].strip():
            return "\n".join(lines[: index - 1]), True
    return text, False


def max_lines(text: str, ctx: PostContext) -> tuple[str, bool]:
    """At most MAX_LINES lines of ghost text."""
    lines = text.split("\n")
    if len(lines) > MAX_LINES:
        return "\n".join(lines[:MAX_LINES]), True
    return text, False


def trailing_whitespace(text: str, ctx: PostContext) -> tuple[str, bool]:
    """No trailing spaces on any line, no trailing empty lines, no half character (a
    replacement character where generation stopped inside a UTF-8 sequence)."""
    text = text.rstrip("\ufffd")
    cleaned = "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n")
    if ctx.cursor.mode != "block" and text.strip() == "":
        return "", False
    return cleaned, False


FILTERS: tuple[Filter, ...] = (
    normalize_newlines,
    rebase_indent,
    single_line_when_inline,
    repetition,
    scope_end,
    bracket_balance,
    suffix_overlap,
    max_lines,
    trailing_whitespace,
)

FILTERS_BY_NAME: dict[str, Filter] = {f.__name__: f for f in FILTERS}


@dataclass(frozen=True)
class Cleaned:
    """The ghost text and whether a filter decided the completion is finished."""

    text: str
    finished: bool


def clean(raw: str, ctx: PostContext) -> Cleaned:
    """Run every filter in order."""
    text = raw
    finished = False
    for apply in FILTERS:
        text, cut = apply(text, ctx)
        finished = finished or cut
    if not text.strip():
        text = ""
    return Cleaned(text, finished)


def is_finished(raw: str, ctx: PostContext) -> bool:
    """While streaming: has a filter already cut the completed lines of `raw`?"""
    if "\n" not in raw:
        return False
    complete = raw[: raw.rfind("\n")]
    if not complete.strip() and ctx.cursor.mode == "block":
        return False
    if ctx.cursor.mode == "inline":
        return True
    return clean(complete + "\n", ctx).finished
