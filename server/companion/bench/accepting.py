"""`companion bench latency`'s accept pass: suggestions accepted as an editor does (insert
the text, run its accept command), then the request at the end of the accepted text and,
when that one is empty because the accepted text ended its line, the request after the
Enter the user presses next (with the editor's indentation: `enter_indent`). The bench
keeps its own copy of the document, so every position it asks for is inside it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from lsprotocol import types

from companion.engine.context import split_lines
from companion.engine.metrics import summarize
from companion.engine.speculation import enter_indent
from companion.lspclient import CompanionClient

# Line starts typed on fresh lines, each suggestion accepted (an editor's Tab), then the
# next request at the end of the accepted text.
ACCEPT_STARTS = (
    "def clamp(value, low, high):\n    ",
    "    if not values:\n        ",
    "for index, item in enumerate(",
    "result = []\n",
    "with open(path) as handle:\n    ",
    "class Counter:\n    def __init__(self):\n        ",
    "    try:\n        ",
    "def parse_line(line):\n    ",
)

def _end_of(line: int, character: int, text: str) -> tuple[int, int]:
    """Where the cursor is after inserting `text` at (line, character) (UTF-16 columns)."""
    parts = text.split("\n")
    if len(parts) == 1:
        return line, character + len(text.encode("utf-16-le")) // 2
    return line + len(parts) - 1, len(parts[-1].encode("utf-16-le")) // 2


def apply_insert(lines: list[str], row: int, column: int, inserted: str) -> tuple[int, int]:
    """Insert into the bench's copy of a document (ASCII text: columns are indices);
    returns where the cursor is after it."""
    current = lines[row]
    lines[row:row + 1] = (current[:column] + inserted + current[column:]).split("\n")
    return _end_of(row, column, inserted)


async def accept_pass(client: CompanionClient, uri: str, text: str, line: int
                     ) -> dict[str, Any]:
    """At each of ACCEPT_STARTS, typed on a fresh line below `line` of the document
    `text` (each below the last one's accepted text), ask for a suggestion, accept it as
    an editor does (insert it, run its accept command), pause as a user does before the
    next key, and time the request at the end of the accepted text. The bench keeps its
    own copy of the document, so every position it asks for is inside it."""
    lines = split_lines(text)
    after: list[float] = []
    answered: list[float] = []  # the requests that got a suggestion
    entered: list[float] = []  # the requests after the Enter that follows an empty one
    rows: list[dict[str, Any]] = []
    accepted = 0
    row = min(line, len(lines) - 1)

    def put(at_row: int, column: int, inserted: str) -> tuple[int, int]:
        client.insert(uri, at_row, column, inserted)
        return apply_insert(lines, at_row, column, inserted)

    for start in ACCEPT_STARTS:
        # A fresh line after the current one, then the start typed on it.
        row, column = put(row, len(lines[row]), "\n")
        row, column = put(row, column, start)
        items = await client.inline(uri, row, column)
        suggestion = items[0].insert_text if items else ""
        if isinstance(suggestion, str) and suggestion:
            row, column = put(row, column, suggestion)
            command = items[0].command
            if command is not None:
                await client.call("accept", client.workspace_execute_command_async(
                    types.ExecuteCommandParams(command=command.command,
                                               arguments=command.arguments)))
            accepted += 1
        await asyncio.sleep(0.25)  # the user reads what was accepted, then goes on
        started = time.perf_counter()
        items = await client.inline(uri, row, column)
        after.append((time.perf_counter() - started) * 1000)
        row_report: dict[str, Any] = {
            "start": start, "accepted": suggestion if isinstance(suggestion, str) else "",
            "ms": round(after[-1], 1), "next": items[0].insert_text if items else ""}
        if items:
            answered.append(after[-1])
        elif not lines[row][column:].strip():
            # Nothing to add on this line: the user presses Enter and the editor indents.
            await asyncio.sleep(0.15)
            indent = enter_indent(lines[row], "python")
            row, column = put(row, column, "\n" + indent)
            started = time.perf_counter()
            items = await client.inline(uri, row, column)
            entered.append((time.perf_counter() - started) * 1000)
            row_report.update(enterMs=round(entered[-1], 1),
                              afterEnter=items[0].insert_text if items else "")
        rows.append(row_report)
    return {"afterAccept": summarize(after), "afterAcceptAnswered": summarize(answered),
            "afterEnter": summarize(entered), "accepted": accepted,
            "spots": len(ACCEPT_STARTS), "empty": len(after) - len(answered), "rows": rows}
