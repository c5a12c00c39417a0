"""The transformers backend through the LSP, on the same embedded GGUF (slow: torch)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import (
    cancel_in_flight,
    cursor_of,
    inline,
    insert_text,
    open_document,
    status,
)
from tests.e2e.test_inline import alphabet

pytestmark = pytest.mark.slow
pytest.importorskip("transformers")
pytest.importorskip("gguf")

MakeClient = Callable[..., Awaitable[LanguageClient]]


async def test_transformers_serves_inline_completions(make_client: MakeClient) -> None:
    client = await make_client({"backend": "transformers"})
    current = await status(client)
    assert current["backend"] == "transformers", current["steps"]
    assert current["state"] == "ready"
    text, position = cursor_of("def fib(n):\n    if n < 2:\n        return n\n    █\n")
    uri = open_document(client, text, "fib.py")
    items = await inline(client, uri, position)
    assert items and insert_text(items[0]).strip()
    assert not insert_text(items[0]).startswith((" ", "\n"))
    # Type on: the KV cache is cropped to the shared prefix and reused, without errors.
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=position, end=position), text="return ")]))
    moved = types.Position(line=position.line, character=position.character + 7)
    await inline(client, uri, moved)
    # A request cancelled mid-decode stops the generation and costs the next one nothing.
    max_tokens = current["settings"]["maxTokens"]
    outcome = await cancel_in_flight(client, lambda attempt: alphabet(client, attempt),
                                     after_s=0.3, within_s=10, max_tokens=max_tokens)
    assert 0 < outcome.tokens < max_tokens
    # ...and the engine answers the next request (a fresh spot: the one above was edited).
    fresh, spot = cursor_of("def area(width, height):\n    █\n")
    answered = await inline(client, open_document(client, fresh, "area.py"), spot)
    assert answered and insert_text(answered[0]).strip()
    current = await status(client)
    assert current["generatedTokens"] > 0
    assert current["requests"].get("modelErrors", 0) == 0
    assert current["state"] == "ready"
