"""Repository context end to end: a definition from another open file reaches the
suggestion (real server, real embedded model)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import cursor_of

MakeClient = Callable[..., Awaitable[LanguageClient]]

PRICING = '''"""Prices in the shop."""


def frobnicated_total(prices: list[float], rate: float) -> float:
    """The sum of the prices with the shop's rate applied."""
    return sum(prices) * (1 + rate)
'''

CART = '''"""The shopping cart."""

from shop import pricing


class Cart:
    def __init__(self) -> None:
        self.prices: list[float] = []
        self.rate = 0.2

    def total(self) -> float:
        """What the cart costs."""
        return pricing.frob█
'''


def _open(client: LanguageClient, path: Path, text: str) -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                             text=text)))
    return uri


async def test_a_function_from_another_open_file_reaches_the_suggestion(
        make_client: MakeClient, tmp_path: Path) -> None:
    """The name exists only in pricing.py: the model can only spell it from the
    repository context (jedi's public names of `pricing`, and pricing.py's code)."""
    client = await make_client({"repoContext": True})
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "pricing.py").write_text(PRICING)
    text, position = cursor_of(CART)
    (package / "cart.py").write_text(text)  # on disk too, as jedi reads a project
    _open(client, package / "pricing.py", PRICING)
    uri = _open(client, package / "cart.py", text)
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=position,
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked),
    ))
    assert result is not None
    items = result.items if isinstance(result, types.InlineCompletionList) else result
    assert items, "no suggestion"
    ghost = items[0].insert_text
    suggestion = ghost if isinstance(ghost, str) else ghost.value
    assert suggestion.startswith("nicated_total"), suggestion
