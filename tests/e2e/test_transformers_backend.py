"""The transformers backend through the LSP, on the same embedded GGUF (slow: torch)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from pytest_lsp import LanguageClient

from tests.e2e.conftest import cursor_of, inline, insert_text, open_document, status

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
    assert (await status(client))["generatedTokens"] > 0
