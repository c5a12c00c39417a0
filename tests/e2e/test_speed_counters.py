"""The engine's speed features with the real model (the rules themselves are unit-tested
against a recording backend in tests/unit/test_prefill_budget.py): an opened file is
warmed up, an uncached window is narrowed and grown after a pause, and automatic requests
typed faster than the model answers are debounced. Each shows in its companion/status
counter: `warmups`, `grows`, `debounced`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import cursor_of, inline, open_document, status, wait_status

MakeClient = Callable[..., Awaitable[LanguageClient]]
log = logging.getLogger(__name__)

# A small context window keeps each prefill short on a busy machine; it is still three
# times the prefill budget (160 tokens), which is what narrowing is about.
SETTINGS = {"contextTokens": 512}
# A module long enough that the window before a cursor near its end is far more than
# the prefill budget and shares nothing with the warmed-up top of the file.
LONG_MODULE = "".join(
    f"def scale_{n}(value: float) -> float:\n    return value * {n} + {n % 7}\n\n\n"
    for n in range(60)
)


def counter(current: dict[str, object], name: str) -> int:
    requests = current["requests"]
    assert isinstance(requests, dict)
    return int(requests.get(name, 0))


async def test_an_opened_file_is_warmed_up(make_client: MakeClient) -> None:
    client = await make_client(SETTINGS)
    before = counter(await status(client), "warmups")
    open_document(client, LONG_MODULE, "warm.py")
    await wait_status(client, lambda s: counter(s, "warmups") == before + 1, 120,
                      "the opened file's warm-up prefill")


async def test_an_uncached_window_is_narrowed_then_grown_after_a_pause(
    make_client: MakeClient,
) -> None:
    client = await make_client(SETTINGS)
    text, position = cursor_of(LONG_MODULE + "def scale_all(values):\n    █\n")
    uri = open_document(client, text, "grow.py")
    await wait_status(client, lambda s: s["inFlight"] == 0, 120, "the warm-up finished")
    before = counter(await status(client), "grows")
    await inline(client, uri, position)  # narrowed to the budget: a short prefill
    # No more requests: after the pause the full window is prefilled in the background.
    await wait_status(client, lambda s: counter(s, "grows") == before + 1, 120,
                      "the full window grown after a pause")


async def test_a_focused_file_is_warmed_at_its_cursor(make_client: MakeClient) -> None:
    """companion/didFocus (the editor shows the file with its cursor there): the narrow
    and the full window at the cursor are prefilled, so the first request there is not
    narrowed (no grow follows it). A malformed focus costs one log line."""
    client = await make_client(SETTINGS)
    text, position = cursor_of(LONG_MODULE + "def scale_all(values):\n    █\n")
    before = counter(await status(client), "warmups")
    uri = open_document(client, text, "focus.py")
    await wait_status(client, lambda s: counter(s, "warmups") == before + 1
                      and s["inFlight"] == 0, 120, "the top of the file warmed up")
    client.protocol.notify("companion/didFocus", {"textDocument": 5})
    client.protocol.notify("companion/didFocus", {
        "textDocument": {"uri": uri},
        "position": {"line": position.line, "character": position.character}})
    await wait_status(client, lambda s: counter(s, "warmups") == before + 3
                      and s["inFlight"] == 0, 120, "the narrow and full window at the cursor")
    grows = counter(await status(client), "grows")
    await inline(client, uri, position)
    await asyncio.sleep(1.5)  # past the pause after which a narrowed request grows
    assert counter(await status(client), "grows") == grows


async def test_automatic_requests_typed_faster_than_answers_are_debounced(
    make_client: MakeClient,
) -> None:
    client = await make_client({"maxTokens": 8})  # short answers: the debounce is the point
    text, position = cursor_of("import os\n\n\ndef list_files(folder):\n    █\n")
    uri = open_document(client, text, "debounce.py")
    await inline(client, uri, position)  # the engine's latency, for the debounce to use
    version, column = 1, position.character
    for burst in range(3):  # the rhythm of a busy machine may hide one burst; not three
        pending = []
        for key in "files = os.listdir(folder)"[: 8 + burst]:
            version += 1
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(line=position.line,
                                                           character=column),
                                      end=types.Position(line=position.line,
                                                         character=column)),
                    text=key)]))
            column += 1
            pending.append(asyncio.ensure_future(client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=types.Position(line=position.line, character=column),
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Automatic)))))
            await asyncio.sleep(0.02)  # a fast typist: a key every 20 ms
        await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout=120)
        if counter(await status(client), "debounced") > 0:
            log.warning("debounced on burst %d: %s", burst + 1, (await status(client))["requests"])
            break
        # A new line for the next burst: the keys above are done.
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=position.line, character=column),
                                  end=types.Position(line=position.line, character=column)),
                text="\n    ")]))
        position = types.Position(line=position.line + 1, character=4)
        column = 4
    current = await status(client)
    assert counter(current, "debounced") > 0, current["requests"]
    assert counter(current, "errors") == 0
