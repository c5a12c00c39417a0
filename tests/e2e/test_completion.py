"""textDocument/completion end to end: the AI item beside snippet items."""

from __future__ import annotations

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import cursor_of, open_document

SOURCE = '''import math


def circle_area(radius: float) -> float:
    """The area of a circle."""
    return math.█
'''


async def test_completion_has_the_ai_item_and_snippets(client: LanguageClient) -> None:
    text, position = cursor_of(SOURCE)
    uri = open_document(client, text, "completion.py")
    result = await client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                               position=position)
    )
    assert isinstance(result, types.CompletionList)
    ai_items = [
        item for item in result.items
        if item.label_details is not None and item.label_details.description == "✦ Companion AI"
    ]
    assert len(ai_items) == 1
    ai = ai_items[0]
    assert ai.insert_text and ai.insert_text.strip()
    assert isinstance(ai.documentation, types.MarkupContent)
    assert ai.insert_text in ai.documentation.value  # the preview shows the full text
    assert ai.sort_text == "0000"


async def test_snippets_match_the_word_being_typed(client: LanguageClient) -> None:
    text, position = cursor_of("cla█\n")
    uri = open_document(client, text, "snippets.py")
    result = await client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                               position=position)
    )
    assert isinstance(result, types.CompletionList)
    snippets = [item for item in result.items if item.kind == types.CompletionItemKind.Snippet]
    assert [item.label for item in snippets] == ["class"]
    assert snippets[0].insert_text_format == types.InsertTextFormat.Snippet
