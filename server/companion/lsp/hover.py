"""textDocument/hover: static facts at once, the model's explanation within a deadline.

Past `hoverDeadlineMs` the hover answers with the static part and the explanation goes on
in the background; it is cached by the definition's text, so the next hover on the same
definition shows it at once.
"""

from __future__ import annotations

import logging

from lsprotocol import types

from companion.engine.context import split_lines, utf16_to_index
from companion.engine.explain import (
    explanation_question,
    find_definition,
    static_markdown,
    word_at,
)
from companion.engine.explanations import explain_prompt_text
from companion.lsp.server import CompanionServer

log = logging.getLogger(__name__)

PENDING_NOTE = "*Companion is still writing an explanation: hover again in a moment.*"


def register(server: CompanionServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: CompanionServer, params: types.HoverParams) -> types.Hover | None:
        """Signature, docstring and location, plus the model's explanation."""
        ls.engine.metrics.count("hover")
        if not ls.settings.hover_enabled:
            return None
        document = ls.document(params.text_document.uri)
        if document is None:
            return None
        text = document.source
        lines = split_lines(text)
        position = params.position
        if not 0 <= position.line < len(lines):
            ls.log_line(f"hover outside the document: line {position.line}",
                        types.MessageType.Warning)
            return None
        line = lines[position.line]
        column = utf16_to_index(line, position.character, ls.position_encoding)
        language = document.language_id or ""
        definition = find_definition(text, position.line, column, language, document.path)
        if definition is None:
            return None
        value = static_markdown(definition, document.path)
        question = explanation_question(definition)
        key = definition.cache_key
        explanation = await ls.explanations.explain(
            key,
            explain_prompt_text(definition, definition.source, question),
            ls.settings.hover_deadline_ms / 1000,
            definition.language,
        )
        if explanation:
            value += f"\n\n---\n\n**✦ Companion:** {explanation}"
        elif ls.explanations.pending(key):
            value += f"\n\n---\n\n{PENDING_NOTE}"
        word = word_at(line, column) or definition.name
        start = line.find(word, max(0, column - len(word)))
        hover_range = None
        if start >= 0:
            hover_range = types.Range(
                start=types.Position(line=position.line, character=start),
                end=types.Position(line=position.line, character=start + len(word)),
            )
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=value),
            range=hover_range,
        )
