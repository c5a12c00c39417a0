"""textDocument/completion: the model's suggestion as an AI item beside snippet items.

The AI item carries the `companion.accepted` command, which the editor runs after
inserting it, so that history knows which completion-list suggestions were kept.
"""

from __future__ import annotations

from lsprotocol import types

from companion.engine.context import split_lines, utf16_to_index
from companion.lsp.server import CompanionServer
from companion.lsp.snippets import snippets_for
from companion.lsp.suggestions import (
    ACCEPT_COMMAND,
    accept_arguments,
    record_shown,
    suggestion_at,
)

AI_DETAIL = "✦ Companion AI"


def _word_before(line: str) -> str:
    word = ""
    for char in reversed(line):
        if not (char.isalnum() or char == "_"):
            break
        word = char + word
    return word


def register(server: CompanionServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[".", "(", " "], resolve_provider=False),
    )
    async def completion(
        ls: CompanionServer, params: types.CompletionParams
    ) -> types.CompletionList:
        """One AI item with the model's suggestion, then matching snippets."""
        uri, position = params.text_document.uri, params.position
        items: list[types.CompletionItem] = []
        suggestion = await suggestion_at(ls, uri, position, "completion")
        document = ls.workspace.text_documents.get(uri)
        word = word_end_char = ""
        if document is not None:
            lines = split_lines(document.source)
            if 0 <= position.line < len(lines):
                line = lines[position.line]
                column = utf16_to_index(line, position.character, ls.position_encoding)
                word = _word_before(line[:column])
                before_word = line[: column - len(word)]
                word_end_char = before_word[-1:] if before_word else ""
        if suggestion is not None and suggestion.text.strip():
            first_line = suggestion.text.strip().split("\n", 1)[0]
            label = word + first_line if word else first_line
            suggestion_id = record_shown(ls, uri, suggestion, "completion-item")
            ls.engine.metrics.count("completionItemShown")
            items.append(
                types.CompletionItem(
                    label=label[:60] + ("…" if len(label) > 60 else ""),
                    label_details=types.CompletionItemLabelDetails(description=AI_DETAIL),
                    kind=types.CompletionItemKind.Text,
                    detail=f"{AI_DETAIL} ({suggestion.source}, {suggestion.latency_ms:.0f} ms)",
                    documentation=types.MarkupContent(
                        kind=types.MarkupKind.Markdown,
                        value=f"```python\n{word}{suggestion.text}\n```",
                    ),
                    insert_text=word + suggestion.text,
                    filter_text=word or first_line,
                    sort_text="0000",
                    preselect=True,
                    command=types.Command(
                        title="Companion: suggestion accepted",
                        command=ACCEPT_COMMAND,
                        arguments=accept_arguments(suggestion_id, suggestion.source),
                    ),
                )
            )
        # No keyword snippets after a dot: that is attribute access.
        for snippet in [] if word_end_char == "." else snippets_for(word):
            items.append(
                types.CompletionItem(
                    label=snippet.label,
                    kind=types.CompletionItemKind.Snippet,
                    detail=snippet.detail,
                    insert_text=snippet.body,
                    insert_text_format=types.InsertTextFormat.Snippet,
                    documentation=types.MarkupContent(
                        kind=types.MarkupKind.Markdown, value=f"```python\n{snippet.body}\n```"
                    ),
                    sort_text=f"1{snippet.label}",
                )
            )
        return types.CompletionList(is_incomplete=False, items=items)
