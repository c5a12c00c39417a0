"""End-to-end fixtures: the real server over stdio (pytest-lsp), the real embedded model.

`client` starts `python -m companion serve` with default settings (llama.cpp, the
embedded SmolLM2 model) and waits until the model is loaded. A test that needs other
settings asks for `make_client` instead, or changes settings through the client's
workspace configuration and a didChangeConfiguration notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from companion.lspclient import plain

# The servers the tests start keep their usage history here, never in the user's
# (tests/conftest.py made it, and every subprocess inherits it).
HISTORY_DIR = os.environ["COMPANION_DATA_DIR"]
SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "companion", "serve"],
    server_env={**os.environ, "COMPANION_DATA_DIR": HISTORY_DIR},
)

CAPABILITIES = types.ClientCapabilities(
    window=types.WindowClientCapabilities(work_done_progress=True),
    workspace=types.WorkspaceClientCapabilities(
        configuration=True,
        workspace_edit=types.WorkspaceEditClientCapabilities(
            document_changes=True, resource_operations=[types.ResourceOperationKind.Create]
        ),
    ),
    general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
    text_document=types.TextDocumentClientCapabilities(
        completion=types.CompletionClientCapabilities(
            completion_item=types.ClientCompletionItemOptions(
                snippet_support=True,
                documentation_format=[types.MarkupKind.Markdown, types.MarkupKind.PlainText],
                label_details_support=True,
            )
        ),
        code_action=types.CodeActionClientCapabilities(
            resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
            data_support=True,
        ),
        hover=types.HoverClientCapabilities(
            content_format=[types.MarkupKind.Markdown, types.MarkupKind.PlainText]
        ),
    ),
)


async def initialize(client: LanguageClient, settings: dict[str, Any] | None = None) -> None:
    client.set_configuration({"companion": dict(settings or {})})
    await client.initialize_session(
        types.InitializeParams(capabilities=CAPABILITIES, initialization_options=settings or {})
    )


async def status(client: LanguageClient) -> dict[str, Any]:
    result = await client.protocol.send_request_async("companion/status", {})
    plain_result: dict[str, Any] = plain(result)
    return plain_result


async def wait_ready(client: LanguageClient, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = await status(client)
        if current["state"] != "loading":
            return current
        if time.monotonic() > deadline:
            raise TimeoutError(f"model still loading after {timeout} s")
        await asyncio.sleep(0.1)


def open_document(client: LanguageClient, text: str, name: str = "sample.py") -> str:
    uri = (Path("/tmp/companion-e2e") / name).as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                                 text=text)
        )
    )
    return uri


def cursor_of(text: str) -> tuple[str, types.Position]:
    """The text without its █ marker, and the marker's LSP position."""
    before, _, after = text.partition("█")
    lines = before.split("\n")
    return before + after, types.Position(line=len(lines) - 1, character=len(lines[-1]))


async def inline(client: LanguageClient, uri: str, position: types.Position
                 ) -> list[types.InlineCompletionItem]:
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    if result is None:
        return []
    return list(result.items if isinstance(result, types.InlineCompletionList) else result)


async def cancel_in_flight(client: LanguageClient, uri: str, position: types.Position,
                           after_s: float = 0.3, within_s: float = 10) -> float:
    """Ask for ghost text, cancel it `after_s` later the way an editor does
    ($/cancelRequest), and return how long the server took to go idle."""
    msg_id = f"cancel-{time.monotonic_ns()}"
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position,
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked))
    answer = asyncio.ensure_future(client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id))
    await asyncio.sleep(after_s)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
    cancelled = time.monotonic()
    with contextlib.suppress(Exception):  # RequestCancelled, or the answer if it was done
        await asyncio.wait_for(answer, timeout=within_s)
    while (await status(client))["inFlight"]:
        if time.monotonic() - cancelled > within_s:
            raise TimeoutError(f"still generating {within_s} s after the cancel")
        await asyncio.sleep(0.05)
    return time.monotonic() - cancelled


def insert_text(item: types.InlineCompletionItem) -> str:
    text = item.insert_text
    return text if isinstance(text, str) else text.value


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    await initialize(lsp_client)
    await wait_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest_asyncio.fixture
async def make_client() -> AsyncIterator[Callable[..., Awaitable[LanguageClient]]]:
    """Start a server with given initializationOptions (stopped at the end of the test)."""
    started: list[LanguageClient] = []

    async def start(settings: dict[str, Any] | None = None, ready: bool = True,
                    env: dict[str, str] | None = None) -> LanguageClient:
        config = SERVER
        if env:
            config = ClientServerConfig(
                server_command=SERVER.server_command,
                server_env={**os.environ, "COMPANION_DATA_DIR": HISTORY_DIR, **env},
            )
        lsp_client: LanguageClient = await config.start()
        started.append(lsp_client)
        await initialize(lsp_client, settings)
        if ready:
            await wait_ready(lsp_client)
        return lsp_client

    yield start
    for lsp_client in started:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(lsp_client.shutdown_session(), timeout=20)
        await lsp_client.stop()
