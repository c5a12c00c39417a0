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
from dataclasses import dataclass
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


# What `backend: auto` may choose for the embedded model, by machine: MLX on Apple
# Silicon, vLLM on a CUDA GPU with room, llama.cpp elsewhere. Tests that mean "the default
# backend" ask the server which one it chose and check it is one of these.
LOCAL_BACKENDS = ("llamacpp", "mlx", "vllm")


def assert_default_backend(current: dict[str, Any]) -> str:
    """The backend `auto` chose, after checking it is a local model that loaded."""
    backend: str = current["backend"]
    assert backend in LOCAL_BACKENDS, (backend, current.get("steps"))
    assert current["state"] in ("ready", "degraded"), current.get("steps")
    return backend


async def wait_status(client: LanguageClient, check: Callable[[dict[str, Any]], bool],
                      timeout: float, what: str) -> dict[str, Any]:
    """companion/status once `check` holds on it; fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        current = await status(client)
        if check(current):
            return current
        assert time.monotonic() < deadline, f"{what} within {timeout} s; status: {current}"
        await asyncio.sleep(0.05)


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


@dataclass
class CancelOutcome:
    """What one cancel that landed did (see `cancel_in_flight`)."""

    idle_after_s: float  # from $/cancelRequest until companion/status said inFlight 0
    tokens: int  # tokens the cancelled generation produced before it stopped
    attempts: int  # tries it took to land a cancel while the engine was at work


Prepare = Callable[[int], tuple[str, types.Position]]


def is_request_cancelled(error: BaseException) -> bool:
    """The JSON-RPC answer to a request cancelled before it finished (-32800)."""
    return getattr(error, "code", None) == -32800


async def cancel_in_flight(client: LanguageClient, prepare: Prepare, *, after_s: float = 0.3,
                           within_s: float = 10, attempts: int = 6, mid_decode: bool = True,
                           max_tokens: int | None = None, start_s: float = 120
                           ) -> CancelOutcome:
    """Cancel a generation while the engine works on it, the way an editor does
    ($/cancelRequest), and prove that it stopped; fails when no try lands.

    `prepare(attempt)` opens (or types into) a document and returns where to ask for
    ghost text: each try needs a prompt the suggestion cache has not answered. A try lands
    when the answer is RequestCancelled (not a finished result) and, with `mid_decode`,
    when the cancelled generation had produced tokens but fewer than `max_tokens`. A try
    cancelled too late (the answer came first) waits less next time, one cancelled
    during the prefill waits longer. A landed cancel must leave the server idle
    (inFlight 0) within `within_s`."""
    wait_s = after_s
    for attempt in range(1, attempts + 1):
        uri, position = prepare(attempt)
        # The document's warm-up (a background prefill) is not the generation to cancel.
        before = await wait_status(client, lambda s: s["inFlight"] == 0, start_s,
                                   "the engine idle before the request")
        msg_id = f"cancel-{time.monotonic_ns()}"
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked))
        answer = asyncio.ensure_future(client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id))
        await wait_status(client, lambda s, pending=answer: s["inFlight"] > 0 or pending.done(),
                          start_s,
                          "the request reaching the engine")
        await asyncio.sleep(wait_s)
        if answer.done():  # finished before the cancel: try again, cancel sooner
            wait_s /= 2
            continue
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
        cancelled_at = time.monotonic()
        cancelled = False
        try:
            await asyncio.wait_for(answer, timeout=within_s + start_s)
        except Exception as error:
            cancelled = is_request_cancelled(error)
            if not cancelled:
                raise
        after = await wait_status(client, lambda s: s["inFlight"] == 0, within_s,
                                  "the engine idle after the cancel")
        idle_after_s = time.monotonic() - cancelled_at
        tokens = after["generatedTokens"] - before["generatedTokens"]
        if not cancelled:  # the result won the race with the cancel
            wait_s /= 2
            continue
        if mid_decode and tokens == 0:  # cancelled while prefilling: go deeper next time
            wait_s *= 2
            continue
        if max_tokens is not None:
            assert tokens < max_tokens, f"the cancelled stream still ran to {tokens} tokens"
        assert idle_after_s < within_s
        return CancelOutcome(idle_after_s, tokens, attempt)
    raise AssertionError(f"no cancel landed {'mid-decode ' if mid_decode else ''}in "
                         f"{attempts} tries (last wait {wait_s:.3f} s)")


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
