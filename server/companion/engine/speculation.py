"""The next suggestion before it is asked for: the document as it will be once the shown
suggestion is accepted, and where the cursor will be then (llama.vscode's "speculative
FIM", Copilot's speculative requests). The engine generates there at low priority and
puts the answer in its result cache, so the request that follows an accept — or that
follows typing the suggestion out — is a cache hit."""

from __future__ import annotations

import re

from companion.engine.context import code_units

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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
