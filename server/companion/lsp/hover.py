"""textDocument/hover: static facts at once, the model's explanation within a deadline.

Past `hoverDeadlineMs` the hover answers with the static part and the explanation goes on
in the background; it is cached by the definition's text, so the next hover on the same
definition shows it at once.
"""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types

from companion.engine.context import split_lines, utf16_to_index
from companion.engine.explain import (
    Definition,
    explanation_question,
    find_definition,
    language_name,
    static_markdown,
    word_at,
)
from companion.engine.languages import spec_for
from companion.engine.prompts import chat_prompt
from companion.lsp.server import CompanionServer

log = logging.getLogger(__name__)

EXPLAIN_MAX_TOKENS = 96
EXPLAIN_TIMEOUT_S = 30.0
PENDING_NOTE = "*Companion is still writing an explanation: hover again in a moment.*"


def explain_prompt_text(definition: Definition | None, code: str, question: str,
                        language: str = "") -> str:
    """The user message: the question, the code (fenced in its language), and where it
    is used."""
    language = language or (definition.language if definition is not None else "python")
    user = f"{question}\n\n```{spec_for(language).tag}\n{code}\n```"
    if definition is not None and definition.use_line:
        user += f"\n\nIt is used here: `{definition.use_line}`"
    return user


async def explain(
    ls: CompanionServer,
    key: str,
    user: str,
    deadline_s: float,
    language: str = "python",
) -> str | None:
    """The cached explanation for `key`, or one generated within `deadline_s` seconds
    (None past it: generation continues and fills the cache). `language` is the code's
    VS Code language id."""
    cached = ls.explainer.get(key)
    if cached is not None:
        ls.engine.metrics.count("hoverCacheHits")
        return cached
    spec = ls.engine.current.spec
    if spec is None:
        return None
    task = ls.explain_tasks.get(key)
    if task is None:
        prompt = chat_prompt(spec.family, user, language=language_name(language))

        async def generate() -> str | None:
            try:
                text = await ls.engine.generate_text(
                    f"explain:{key}", prompt, EXPLAIN_MAX_TOKENS, EXPLAIN_TIMEOUT_S
                )
                if text:
                    ls.explainer.put(key, text)
                return text
            except Exception as error:
                log.warning("explanation failed: %s", error)
                return None
            finally:
                ls.explain_tasks.pop(key, None)

        task = asyncio.ensure_future(generate())
        ls.explain_tasks[key] = task
    try:
        return await asyncio.wait_for(asyncio.shield(task), timeout=max(0.0, deadline_s))
    except TimeoutError:
        return None


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
        explanation = await explain(
            ls,
            key,
            explain_prompt_text(definition, definition.source, question),
            ls.settings.hover_deadline_ms / 1000,
            definition.language,
        )
        if explanation:
            value += f"\n\n---\n\n**✦ Companion:** {explanation}"
        elif key in ls.explain_tasks:
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
