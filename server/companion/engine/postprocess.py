"""Post-processing: small named filters that turn raw model output into ghost text.

Each filter takes the text and the cursor context and returns the new text and whether
it cut something off (a cut means the completion is finished, so streaming can stop).
The filters know the language (`engine.languages`): Python's blocks end by indentation,
the C family's and JavaScript's by brackets, Ruby's and the shell's by keywords
(`engine.blocks`); brackets are read outside strings and comments (`engine.brackets`),
and the syntax tree (`engine.syntax`) tells what the cursor is in and whether a
suggestion leaves complete statements. Golden cases for every filter live in
tests/golden/ (postprocess.json, and one file per language under languages/). What
the filters know about the request is `engine.postcontext.PostContext`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from companion.engine import blocks, syntax
from companion.engine.brackets import CLOSING, OPENERS, LexState, scan
from companion.engine.postcontext import PostContext, indent_width
from companion.engine.repetition import looping, repetition

__all__ = ["CLOSING", "OPENERS", "PostContext", "clean", "is_finished", "looping"]

MAX_LINES = 12
_PY_DEFINITION = re.compile(r"^(?:async\s+)?(?:def|class)\s+(\w+)")
_DEFINITION = re.compile(
    r"^(?:(?:export|default|pub(?:\([\w:]+\))?|public|private|protected|internal|static|"
    r"async|final|abstract|override|virtual|inline|unsafe|extern|const)\s+)*"
    r"(?:function\*?|func|fn|def|class|struct|enum|interface|trait|impl|module|type)\s+"
    r"(?:\([^)]*\)\s*)?(\w+)"
)
_CONTINUATIONS = re.compile(r"^(elif\b|else\b|except\b|finally\b|case\b)")

Filter = Callable[[str, PostContext], tuple[str, bool]]


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
        if first.strip() and indent_width(first) < len(ctx.cursor.line_prefix):
            return "", True  # the model left the block the cursor is in
        lines[0] = first[len(ctx.cursor.line_prefix) :]
    leading = lines[0][: indent_width(lines[0])]
    extra = len(leading) % ctx.indent_unit if leading.strip(" ") == "" else 0
    lines[0] = lines[0][extra:]
    return "\n".join(lines), False


def single_line_when_inline(text: str, ctx: PostContext) -> tuple[str, bool]:
    """Mid-line the suggestion finishes the line and nothing more."""
    if ctx.cursor.mode == "inline" and "\n" in text:
        return text.split("\n", 1)[0], True
    return text, False


def scope_end(text: str, ctx: PostContext) -> tuple[str, bool]:
    """Stop at the end of the statement or block the cursor is in.

    Python: "line" mode keeps only the first line unless that line opens a block (ends
    with ':'), in which case the block's body comes too. "block" mode (an empty line)
    keeps statements at the cursor's level and deeper, up to a dedent; at the top level
    it stops at the first blank line, i.e. after one definition. Languages with bracket
    or keyword blocks count depth instead (`blocks.scope_end`). In a line comment or a
    one-line string the suggestion finishes that line.
    """
    lines = text.split("\n")
    if len(lines) == 1:
        return text, False
    if ctx.single_line:
        return lines[0], True
    if ctx.spec.blocks != "indent":
        blank = not ctx.cursor.line_prefix.strip()
        top_level = blank and not ctx.cursor.line_prefix and not ctx.open_before
        return blocks.scope_end(text, ctx.cursor.line_prefix, blank, top_level, ctx.spec,
                                ctx.lex_state, ctx.keyword_closed_below)
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
        width = indent_width(line)
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
    definition_of = _PY_DEFINITION if ctx.spec.blocks == "indent" else _DEFINITION
    defined_below = {
        match.group(1) for line in following if (match := definition_of.match(line))
    }
    cut = False
    # On a blank line the first line is a whole line too; elsewhere it ends the cursor's.
    start = 0 if ctx.cursor.mode == "block" else 1
    for index in range(start, len(lines)):
        line = lines[index].strip()
        definition = definition_of.match(line)
        if blocks.CLOSER_LINE.match(line):
            continue  # a closer may close the suggestion's own block: bracket_balance decides
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


def bracket_balance(text: str, ctx: PostContext) -> tuple[str, bool]:
    """Cut at a closing bracket that closes nothing the suggestion opened and nothing
    open before the cursor (`x))` in `f(|`), or that closes what the code after the
    cursor already closes (`"hello")` in `print(|)`, `}` before the block's own `}`).
    Brackets in strings and comments do not count, and a line comment that would turn
    the rest of the cursor's line into a comment is cut too (`f(x // note|)`)."""
    own: list[str] = []
    outer = [opened.char for opened in ctx.closable]
    result = scan(text, ctx.spec, ctx.lex_state, ctx.cursor.line_prefix[-1:])
    first_end = text.find("\n") if "\n" in text else len(text)
    if 0 <= result.comment_at < first_end and ctx.cursor.line_suffix.strip():
        # A line comment on the cursor's line would swallow the code after the cursor.
        return text[: result.comment_at].rstrip(), True
    for index, char in result.brackets:
        if char in OPENERS:
            own.append(char)
        elif own:
            if own[-1] != CLOSING[char]:
                return text[:index].rstrip(), True
            own.pop()
        elif outer and outer[-1] == CLOSING[char]:
            outer.pop()
        elif not (ctx.spec.lenient_closers and char == ")"):
            return text[:index].rstrip(), True
    return text, False


def max_lines(text: str, ctx: PostContext) -> tuple[str, bool]:
    """At most MAX_LINES lines of ghost text."""
    lines = text.split("\n")
    if len(lines) > MAX_LINES:
        return "\n".join(lines[:MAX_LINES]), True
    return text, False


def complete_statements(text: str, ctx: PostContext) -> tuple[str, bool]:
    """Never show broken code: close what the suggestion opened and left open, and trim
    back to the last complete statement when it stops mid-expression.

    For languages with bracket or keyword blocks, and for Python suggestions that leave
    a bracket open. Each candidate (the text up to a line
    end, longest first, with its own closers added: `blocks.closers`) is parsed in the
    document; the first that leaves no more syntax errors than the document had without
    it wins. No candidate: no suggestion. Without a grammar (plain text, unknown
    languages) the text stays as it is. A trim is not a cut: the model may still finish
    the statement.
    """
    if not text.strip() or not ctx.spec.grammar:
        return text, False  # prose and unknown languages: nothing to close or parse
    first_line = ctx.cursor.line_prefix
    state = LexState() if first_line.strip() else ctx.lex_state
    opened = blocks.closers(text, first_line, ctx.spec, state, ctx.statement_open)
    if ctx.spec.blocks == "indent" and not opened:
        return text, False  # Python: only a suggestion that leaves a bracket open
    baseline = ctx.baseline_errors
    if baseline is None:  # a grammar the installed language pack lacks
        return text + opened, False
    lines = text.split("\n")
    for size in range(len(lines), 0, -1):
        kept = "\n".join(lines[:size]).rstrip()
        if not kept.strip():
            break
        closing = blocks.closers(kept, first_line, ctx.spec, state, ctx.statement_open)
        last = kept.rsplit("\n", 1)[-1].rstrip()
        if blocks.continues(last, ctx.spec) and not (
                last.endswith(",") and closing.startswith("\n")):
            continue  # mid-expression (a comma before a closer on its own line is fine)
        # A call closed after its last argument may still need its `;`: `})` → `});`.
        endings = ("", ";") if closing.endswith((")", "]")) else ("",)
        for ending in endings:
            candidate = kept + closing + ending
            document = ctx.cursor.prefix + candidate + ctx.cursor.suffix
            errors = syntax.errors_in(ctx.spec, document)
            if errors is not None and errors <= baseline:
                return candidate, False
    return "", False


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
    complete_statements,
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
