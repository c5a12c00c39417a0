"""textDocument/inlineCompletion: ghost text at the cursor (LSP 3.18)."""

from __future__ import annotations

from lsprotocol import types

from companion.lsp.server import CompanionServer
from companion.lsp.suggestions import (
    ACCEPT_COMMAND,
    accept_arguments,
    record_shown,
    suggestion_at,
)


def register(server: CompanionServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: CompanionServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        """Ghost text at the cursor from the model (templates while none is loaded)."""
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        suggestion = await suggestion_at(ls, params.text_document.uri, params.position, "inline",
                                         automatic)
        if suggestion is None or not suggestion.text:
            return types.InlineCompletionList(items=[])
        suggestion_id = record_shown(ls, params.text_document.uri, suggestion,
                                     "automatic" if automatic else "invoked")
        ls.engine.metrics.count("shown")
        return types.InlineCompletionList(
            items=[
                types.InlineCompletionItem(
                    insert_text=suggestion.text,
                    range=types.Range(start=params.position, end=params.position),
                    command=types.Command(
                        title="Companion: suggestion accepted",
                        command=ACCEPT_COMMAND,
                        arguments=accept_arguments(suggestion_id, suggestion.source),
                    ),
                )
            ]
        )
