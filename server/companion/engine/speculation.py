"""The next suggestion before it is asked for: the document as it will be once the shown
suggestion is accepted, and where the cursor will be then (llama.vscode's "speculative
FIM", Copilot's speculative requests). The engine generates there at low priority and
puts the answer in its result cache, so the request that follows an accept — or that
follows typing the suggestion out — is a cache hit.

A suggestion that completes its line usually leaves nothing to suggest at its end: the
user's next key is Enter. `after_enter` is the document once the editor has inserted the
line break and its indentation (VS Code's rules for the language: the line's own
indentation, one level more after an opening `:` / bracket, one less after Python's
`return`/`pass`/`raise`/`break`/`continue`), where the engine speculates next."""

from __future__ import annotations

import re

from companion.engine.context import code_units

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_INDENT = re.compile(r"[ \t]*")
_DEDENT_AFTER = re.compile(r"^\s*(return|pass|raise|break|continue)\b")
_OPENERS = ("(", "[", "{")


def line_start(text: str, line: int) -> int:
    """The offset of the start of `line` in `text` (lines as LSP counts them), or the
    text's end when it has fewer lines."""
    if line <= 0:
        return 0
    for count, match in enumerate(_LINE_BREAK.finditer(text), start=1):
        if count == line:
            return match.end()
    return len(text)


def as_accepted(text: str, line: int, column: int, suggestion: str,
                encoding: str = "utf-16") -> tuple[str, int, int]:
    """The document after `suggestion` is inserted at (line, column: a str index in the
    line), and the cursor after it: (text, line, character in `encoding` code units).

    Editors insert with the document's own line ending, so a CRLF document gets CRLF."""
    if "\r\n" in text:
        suggestion = suggestion.replace("\r\n", "\n").replace("\n", "\r\n")
    offset = line_start(text, line) + column
    accepted = text[:offset] + suggestion + text[offset:]
    parts = _LINE_BREAK.split(suggestion)
    if len(parts) == 1:
        last_line_start = line_start(accepted, line)
        head = accepted[last_line_start: offset + len(suggestion)]
        return accepted, line, code_units(head, encoding)
    row = line + len(parts) - 1
    return accepted, row, code_units(parts[-1], encoding)


def _without_comment(line: str) -> str:
    """A Python line without its trailing `#` comment (a `#` inside quotes is code)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#":
            return line[:index].rstrip()
    return line


def enter_indent(line: str, language: str) -> str:
    """The indentation an editor gives the new line when Enter is pressed at the end of
    `line`: the same, one level more after an opener (Python's `:`, a bracket), one less
    after a Python statement that ends its block."""
    indent = _INDENT.match(line).group()  # type: ignore[union-attr]
    unit = "\t" if indent.startswith("\t") else "    "
    code = line.rstrip()
    if language == "python":
        code = _without_comment(code)
        if code.endswith(":") or code.endswith(_OPENERS):
            return indent + unit
        if _DEDENT_AFTER.match(code):
            return indent[:-len(unit)] if indent.endswith(unit) else indent
        return indent
    if code.endswith(_OPENERS):
        return indent + unit
    return indent


def after_enter(text: str, line: int, column: int, suggestion: str, language: str,
                encoding: str = "utf-16") -> tuple[str, int, int] | None:
    """The document after `suggestion` is accepted at (line, column: a str index) and
    Enter is pressed at its end, and the cursor then; None when code follows it on its
    line (Enter would split the code) or its last line is blank (nothing to end)."""
    offset = line_start(text, line) + column
    stop = _LINE_BREAK.search(text, offset)
    rest = text[offset:stop.start() if stop else len(text)]
    last = _LINE_BREAK.split(suggestion)[-1]
    if rest.strip() or not last.strip():
        return None
    if "\n" in suggestion or "\r" in suggestion:
        ended = last
    else:
        ended = text[line_start(text, line):offset] + suggestion
    newline = "\r\n" if "\r\n" in text else "\n"
    indent = enter_indent(ended, language)
    return as_accepted(text, line, column, suggestion + newline + indent, encoding)
