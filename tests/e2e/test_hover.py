"""textDocument/hover end to end: static facts, the model's explanation, deadline, cache."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import open_document, status

SOURCE = '''def celsius_to_fahrenheit(celsius: float) -> float:
    """Convert a temperature from Celsius to Fahrenheit."""
    return celsius * 9 / 5 + 32


reading = celsius_to_fahrenheit(21.5)
'''

MakeClient = Callable[..., Awaitable[LanguageClient]]
PREFIX = "**✦ Companion:**"


def explanation_in(markdown: str) -> str:
    """The model's explanation after the `**✦ Companion:**` prefix, checked to be prose:
    several words, not an apology from the server. (Its wording is the model's, which
    varies between engine builds and machines: only its shape is asserted.)"""
    assert PREFIX in markdown, markdown
    explanation = markdown.split(PREFIX, 1)[1].strip()
    words = re.findall(r"[A-Za-z]{2,}", explanation)
    assert len(explanation) > 20 and len(words) >= 4, f"no real explanation: {explanation!r}"
    assert "could not explain" not in explanation, explanation
    return explanation


async def hover_text(client: LanguageClient, uri: str, line: int, character: int) -> str:
    result = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri),
                          position=types.Position(line=line, character=character))
    )
    assert result is not None
    assert isinstance(result.contents, types.MarkupContent)
    assert result.contents.kind == types.MarkupKind.Markdown
    return result.contents.value


async def test_hover_explains_a_function_from_its_use(make_client: MakeClient) -> None:
    client = await make_client({"hoverDeadlineMs": 60000})
    uri = open_document(client, SOURCE, "hover.py")
    value = await hover_text(client, uri, 5, 14)  # on the call
    assert "def celsius_to_fahrenheit(celsius: float) -> float:" in value
    assert "Convert a temperature from Celsius to Fahrenheit." in value
    assert "hover.py:1" in value
    explanation_in(value)


async def test_past_the_deadline_static_first_then_cached(make_client: MakeClient) -> None:
    client = await make_client({"hoverDeadlineMs": 0})
    uri = open_document(client, SOURCE, "deadline.py")
    first = await hover_text(client, uri, 0, 6)
    assert "def celsius_to_fahrenheit" in first
    assert "still writing an explanation" in first
    # The explanation finishes in the background; the next hover shows it from the cache.
    for _ in range(300):
        await asyncio.sleep(0.2)
        later = await hover_text(client, uri, 0, 6)
        if "✦ Companion:" in later:
            break
    explanation_in(later)
    assert (await status(client))["requests"].get("hoverCacheHits", 0) >= 1


async def test_hover_without_a_model_gives_the_static_part(make_client: MakeClient) -> None:
    client = await make_client({"backend": "templates"})
    uri = open_document(client, SOURCE, "static.py")
    value = await hover_text(client, uri, 5, 2)  # on `reading`
    assert "reading = celsius_to_fahrenheit(21.5)" in value
    assert "✦ Companion:" not in value


async def test_explain_command_returns_markdown(client: LanguageClient) -> None:
    uri = open_document(client, SOURCE, "explain.py")
    answer = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="companion.explain",
            arguments=[uri, {"start": {"line": 0, "character": 0},
                             "end": {"line": 2, "character": 30}}],
        )
    )
    assert isinstance(answer, str)
    assert answer.startswith(PREFIX), answer  # a selection: no static header before it
    explanation_in(answer)
