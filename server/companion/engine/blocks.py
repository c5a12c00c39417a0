"""Where statements and blocks end in languages that close them with a bracket or a
keyword (the C family, JavaScript, Go, Rust, PHP; Ruby's `end`, the shell's `fi`).

Depth is counted from the lexer's brackets (strings and comments skipped) plus, for
keyword languages, the lines that open (`def`, `if ... then`, `do`) and close (`end`,
`fi`, `done`, `esac`) a block. Python's indentation rules stay in `postprocess`.
"""

from __future__ import annotations

import re

from companion.engine.brackets import CLOSING, OPENERS, LexState, code_part, scan
from companion.engine.languages import LanguageSpec

# Ruby: a line that starts one of these opens a block `end` closes ...
_RUBY_OPENERS = re.compile(
    r"^(?:def|class|module|if|unless|while|until|case|begin|for)\b(?!.*\bend\s*$)")
_RUBY_DO = re.compile(r"\bdo(?:\s*\|[^|]*\|)?\s*$")
# ... the shell: `then`/`do` at a line's end (`if x; then`), `case` at its start.
_SHELL_OPENERS = re.compile(r"(?:^|[;&\s])(?:then|do)\s*$|^case\b")
_SHELL_MIDDLE = re.compile(r"^(?:elif|else)\b")
_SHELL_CLOSER_OF = {"if": "fi", "elif": "fi", "for": "done", "while": "done", "until": "done",
                    "select": "done", "case": "esac"}
# A line that only closes things: `}`, `});`, `end`, `fi`, `]`.
CLOSER_LINE = re.compile(r"^(?:[\])}]+[;,)\]]*|end|fi|done|esac|end\)|end\.\w+)$")


def keyword_delta(line: str, spec: LanguageSpec) -> int:
    """How many keyword blocks `line` opens (positive) or closes (negative)."""
    code = line.strip()
    if spec.blocks != "keywords" or not code or code.startswith(spec.line_comment or "\0"):
        return 0
    first = re.split(r"[\s;().]", code, maxsplit=1)[0]
    if first in spec.end_keywords:
        return -1
    if spec.id == "shell":
        if _SHELL_MIDDLE.match(code):
            return 0
        return 1 if _SHELL_OPENERS.search(code) else 0
    return 1 if _RUBY_OPENERS.match(code) or _RUBY_DO.search(code) else 0


def keyword_closer(line: str, spec: LanguageSpec) -> str:
    """The keyword that closes the block `line` opens."""
    if spec.id != "shell":
        return spec.end_keywords[0] if spec.end_keywords else "end"
    code = line.strip()
    first = re.split(r"[\s;]", code, maxsplit=1)[0]
    if first in _SHELL_CLOSER_OF:
        return _SHELL_CLOSER_OF[first]
    return "done" if re.search(r"\bdo\s*$", code) else "fi"


def line_depths(lines: list[str], spec: LanguageSpec, state: LexState) -> list[int]:
    """The depth after each line, counted from 0 at the start of `lines[0]`."""
    depths: list[int] = []
    depth = 0
    for line in lines:
        result = scan(line + "\n", spec, state)
        state = result.state
        for _, char in result.brackets:
            depth += 1 if char in OPENERS else -1
        depth += keyword_delta(line, spec)
        depths.append(depth)
    return depths


_CONTINUES = re.compile(r"(?:[=+\-*/%&|^<>!?:,.(\[{]|=>|\b(?:and|or|not))\s*$")
_COMPLETE = re.compile(r"(?:\*/|\+\+|--|;;)\s*$")


def continues(line: str, spec: LanguageSpec) -> bool:
    """Does the statement go on after `line` (it ends in an operator or a comma)?"""
    line = code_part(line, spec)
    return bool(_CONTINUES.search(line)) and not _COMPLETE.search(line)


_GOES_ON = re.compile(
    r"^(?:[\])}]|(?:end|else|elsif|elif|when|in|rescue|ensure|fi|done|esac|catch|finally"
    r"|then|do)\b)")


def _dedents(line: str, width: int) -> bool:
    """Is `line` less indented than the cursor, and not a closer or a continuation of
    the cursor's block (`} else {`, `elsif`, `rescue`)? Then the suggestion left it."""
    indent = len(line) - len(line.lstrip(" \t"))
    return indent < width and not _GOES_ON.match(line.strip())


def scope_end(text: str, cursor_line: str, blank: bool, top_level: bool,
              spec: LanguageSpec, state: LexState, closed_below: bool = False
              ) -> tuple[str, bool]:
    """Keep the statement (or block) the cursor is in, no more.

    On a blank line ("block" mode) statements follow one another until the suggestion
    closes the cursor's block or goes back to less indentation than the cursor's; at
    the top level it stops at the first blank line after a complete item (one
    definition). After code ("line" mode) the cursor's statement
    goes on while it has brackets or blocks open, or its line ends in an operator, and
    stops at the end of the line that completes it. A keyword that closes the cursor's
    block (`end`, `fi`) is left out when the code below already has it (`closed_below`);
    a bracket that does so is `bracket_balance`'s to cut.
    """
    lines = text.split("\n")
    if len(lines) == 1:
        return text, False
    full = [cursor_line + lines[0], *lines[1:]]
    # Depth from the start of the cursor's line: its prefix may open a block (`f() {|`).
    prefix_state = state if blank else LexState()
    depths = line_depths(full, spec, prefix_state)
    seen_body = False
    for index, line in enumerate(full):
        depth = depths[index]
        if blank:
            if not line.strip():
                if top_level and seen_body and depth <= 0:
                    return "\n".join(lines[:index]).rstrip("\n"), True
                continue
            seen_body = True
            if _dedents(line, len(cursor_line)) and depth >= 0:
                return "\n".join(lines[:index]).rstrip(), True  # it left the block
            if depth < 0:  # this line closes the block the cursor is in
                if closed_below and keyword_delta(line, spec) < 0:
                    return "\n".join(lines[:index]).rstrip(), True
                return "\n".join(lines[: index + 1]), True
        elif depth <= 0 and line.strip() and not continues(line, spec):
            keep = "\n".join(lines[: index + 1])
            return keep, index + 1 < len(lines)
    return text, False


def closers(text: str, first_line: str, spec: LanguageSpec, state: LexState,
            pending: list[tuple[str, str, bool]] | None = None) -> str:
    """What closes the brackets and keyword blocks `text` opened and left open: a block
    opened at a line's end gets its closer on a line of its own at that line's
    indentation (`{` ... `}`, `do` ... `end`), a bracket opened mid-line its closer
    right after the text (`foo(a` → `)`). `pending` are the brackets the cursor's line
    opened that the suffix leaves open, as (closer, indentation, on a line of its own)."""
    lines = text.split("\n")
    full = [first_line + lines[0], *lines[1:]]
    stack: list[tuple[str, str, bool]] = list(pending or [])
    for number, line in enumerate(full):
        indent = line[: len(line) - len(line.lstrip())]
        # On the cursor's line only what the suggestion wrote counts.
        start = len(first_line) if number == 0 else 0
        result = scan(line[start:] + "\n", spec, state)
        state = result.state
        for offset, char in result.brackets:
            index = offset + start
            if char in OPENERS:
                at_end = not line[index + 1 :].strip()
                stack.append((OPENERS[char], indent, at_end))
            elif stack and stack[-1][0] == char:
                stack.pop()
            elif not stack and number == 0:
                pass  # closes something before the cursor: bracket_balance allowed it
        delta = keyword_delta(line, spec)
        if number == 0 and keyword_delta(first_line, spec) != 0:
            delta = 0  # the cursor's line opened (or closed) that block, not the suggestion
        if delta > 0:
            stack.append((keyword_closer(line, spec), indent, True))
        elif delta < 0 and stack and stack[-1][0] not in CLOSING:
            stack.pop()
    tail = ""
    for closer, indent, own_line in reversed(stack):
        tail += f"\n{indent}{closer}" if own_line else closer
    return tail
