"""textDocument/inlineCompletion end to end: real server, real embedded model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

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

MakeClient = Callable[..., Awaitable[LanguageClient]]
log = logging.getLogger(__name__)

FUNCTION_BODY = '''from dataclasses import dataclass


@dataclass
class Item:
    name: str
    price: float
    quantity: int = 0


def total_value(items: list[Item]) -> float:
    """The value of everything in stock."""
    █


def cheapest(items: list[Item]) -> Item | None:
    """The item with the lowest price."""
    return min(items, key=lambda item: item.price)
'''


async def test_inline_completion_in_an_empty_function_body(client: LanguageClient) -> None:
    text, position = cursor_of(FUNCTION_BODY)
    uri = open_document(client, text)
    items = await inline(client, uri, position)
    assert len(items) == 1
    ghost = insert_text(items[0])
    assert ghost.strip(), "the model must suggest something on an empty body line"
    # The cursor already sits after four spaces: no leading newline, no extra indentation.
    assert not ghost.startswith(("\n", " "))
    for line in ghost.split("\n")[1:]:
        assert not line.strip() or line.startswith("    "), f"badly indented: {ghost!r}"
    # It never rewrites the code that follows the cursor.
    assert "def cheapest" not in ghost
    assert items[0].range is not None and items[0].range.start == position
    assert items[0].command is not None and items[0].command.command == "companion.accepted"


async def test_mid_line_completion_is_one_line_and_keeps_the_suffix(
    client: LanguageClient,
) -> None:
    text, position = cursor_of("values = [3, 1, 2]\nbiggest = max(█)\nprint(biggest)\n")
    uri = open_document(client, text, "mid_line.py")
    items = await inline(client, uri, position)
    for item in items:
        ghost = insert_text(item)
        assert "\n" not in ghost
        assert not ghost.endswith(")"), f"repeats the auto-closed paren: {ghost!r}"


async def test_typing_updates_the_document(client: LanguageClient) -> None:
    """Incremental didChange: the suggestion follows what was typed."""
    text, position = cursor_of("import os\n\n█\n")
    uri = open_document(client, text, "typing.py")
    typed = "def current_directory() -> str:\n    return os."
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=position, end=position), text=typed
                )
            ],
        )
    )
    items = await inline(client, uri, types.Position(line=3, character=14))
    assert items, "a suggestion after `return os.`"
    ghost = insert_text(items[0])
    assert "\n" not in ghost.strip() and ghost.strip()


CANCEL_MAX_TOKENS = 256


def alphabet(client: LanguageClient, attempt: int) -> tuple[str, types.Position]:
    """A body with two dozen lines left to write: no answer ends before a cancel lands."""
    text, position = cursor_of(
        f'def alphabet_{attempt}():\n    """Print a to z, one call per letter."""\n'
        '    print("a")\n    print("b")\n    █\n')
    return open_document(client, text, f"cancel_{attempt}.py"), position


async def test_a_cancelled_generation_stops_mid_decode(make_client: MakeClient) -> None:
    # Deadlines far away: only the cancel may end these generations early.
    client = await make_client({"maxTokens": CANCEL_MAX_TOKENS, "inlineDeadlineMs": 60000})
    before = await status(client)
    outcome = await cancel_in_flight(client, lambda attempt: alphabet(client, attempt),
                                     after_s=0.15, within_s=5, max_tokens=CANCEL_MAX_TOKENS)
    log.warning("cancel landed on try %d after %d tokens; idle %.2f s later",
                outcome.attempts, outcome.tokens, outcome.idle_after_s)
    # It was decoding (tokens came) and it stopped there, well short of the maximum.
    assert 0 < outcome.tokens < CANCEL_MAX_TOKENS
    assert outcome.idle_after_s < 5
    current = await status(client)
    assert current["requests"]["cancelled"] >= before["requests"].get("cancelled", 0) + 1
    assert current["requests"].get("errors", 0) == 0
    # The worker is free again: the next request is served by the model, in full.
    text, position = cursor_of(FUNCTION_BODY)
    uri = open_document(client, text, "after_cancel.py")
    items = await asyncio.wait_for(inline(client, uri, position), timeout=60)
    assert items and insert_text(items[0]).strip()
    after = await status(client)
    assert after["generatedTokens"] > current["generatedTokens"]


async def test_accepting_a_suggestion_is_counted(client: LanguageClient) -> None:
    text, position = cursor_of(FUNCTION_BODY)
    uri = open_document(client, text, "accept.py")
    items = await inline(client, uri, position)
    assert items and items[0].command is not None
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=items[0].command.command, arguments=items[0].command.arguments
        )
    )
    current = await status(client)
    assert current["accepted"] == 1
    assert current["shown"] >= 1


async def test_the_request_after_an_accept_is_ready_before_it_is_asked(
    client: LanguageClient,
) -> None:
    """Speculation: while the suggestion is on screen, the server computes the one that
    follows it as if it were accepted; the request at the end of the accepted text is
    then answered from the cache, by the real model's text."""
    text, position = cursor_of(FUNCTION_BODY)
    uri = open_document(client, text, "speculate.py")
    items = await inline(client, uri, position)
    assert items and items[0].command is not None
    shown = insert_text(items[0])
    assert shown.strip()
    # As an editor accepts: the text goes into the document, then the accept command.
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=position, end=position), text=shown
                )
            ],
        )
    )
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=items[0].command.command, arguments=items[0].command.arguments
        )
    )
    deadline = asyncio.get_running_loop().time() + 30
    while (await status(client))["requests"].get("speculated", 0) < 1:
        assert asyncio.get_running_loop().time() < deadline, "no speculative suggestion"
        await asyncio.sleep(0.05)
    before = await status(client)
    lines = shown.split("\n")
    end = types.Position(
        line=position.line + len(lines) - 1,
        character=(position.character if len(lines) == 1 else 0)
        + len(lines[-1].encode("utf-16-le")) // 2,
    )
    await inline(client, uri, end)
    after = await status(client)
    # Answered from the speculation: a cache hit, not a generation of its own.
    assert after["requests"].get("cacheHits", 0) == before["requests"].get("cacheHits", 0) + 1
