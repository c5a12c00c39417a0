"""A small LSP client that drives `companion serve` over stdio (demo, bench, doctor).

It is an ordinary pygls LanguageClient plus: the server's stderr drained into a ring
buffer (an undrained pipe would block the server once full), and typed helpers for the
requests the tools make.
"""

from __future__ import annotations

import asyncio
import collections
import os
import sys
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from companion import __version__


class CompanionClient(LanguageClient):
    """An LSP client for one `python -m companion serve` process."""

    def __init__(self) -> None:
        super().__init__("companion-client", __version__)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self.log_messages: list[str] = []
        self.progress_values: list[Any] = []
        self._drain: asyncio.Task[None] | None = None
        self._versions: dict[str, int] = {}
        self.server_capabilities: types.ServerCapabilities | None = None

        @self.feature(types.WINDOW_LOG_MESSAGE)
        def on_log(client: CompanionClient, params: types.LogMessageParams) -> None:
            client.log_messages.append(params.message)

        @self.feature(types.WINDOW_SHOW_MESSAGE)
        def on_show(client: CompanionClient, params: types.ShowMessageParams) -> None:
            client.log_messages.append(params.message)

        @self.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def on_create(client: CompanionClient, params: types.WorkDoneProgressCreateParams) -> None:
            return None

        @self.feature(types.PROGRESS)
        def on_progress(client: CompanionClient, params: types.ProgressParams) -> None:
            client.progress_values.append(params.value)

    async def start(self, settings: dict[str, Any] | None = None, *server_args: str) -> float:
        """Start the server and initialize; returns the seconds it took."""
        started = time.perf_counter()
        env = dict(os.environ)
        await self.start_io(sys.executable, "-m", "companion", "serve", *server_args, env=env)
        process = self._server
        if process is not None and process.stderr is not None:
            self._drain = asyncio.ensure_future(self._read_stderr(process.stderr))
        result = await self.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(
                    window=types.WindowClientCapabilities(work_done_progress=True),
                    workspace=types.WorkspaceClientCapabilities(
                        workspace_edit=types.WorkspaceEditClientCapabilities(
                            document_changes=True,
                            resource_operations=[types.ResourceOperationKind.Create],
                        )
                    ),
                    general=types.GeneralClientCapabilities(
                        position_encodings=[types.PositionEncodingKind.Utf16]
                    ),
                ),
                initialization_options={"historyEnabled": False, **(settings or {})},
                process_id=os.getpid(),
            )
        )
        self.server_capabilities = result.capabilities
        self.initialized(types.InitializedParams())
        return time.perf_counter() - started

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    async def status(self) -> dict[str, Any]:
        result = await self.protocol.send_request_async("companion/status", {})
        status: dict[str, Any] = plain(result)
        return status

    async def wait_ready(self, timeout: float = 300) -> dict[str, Any]:
        """Poll companion/status until the model has finished loading."""
        deadline = time.monotonic() + timeout
        while True:
            status = await self.status()
            if status["state"] != "loading" or time.monotonic() > deadline:
                return status
            await asyncio.sleep(0.1)

    async def idle(self, timeout: float = 30) -> None:
        """Wait until the server has no generation running or queued (a file's warm-up)."""
        deadline = time.monotonic() + timeout
        while (await self.status())["inFlight"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def open(self, path: Path | str, text: str, language: str = "python") -> str:
        uri = Path(path).resolve().as_uri()
        self._versions[uri] = 1
        self.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id=language, version=1, text=text
                )
            )
        )
        return uri

    def close_document(self, uri: str) -> None:
        self._versions.pop(uri, None)
        self.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))

    def insert(self, uri: str, line: int, character: int, text: str) -> None:
        """An incremental didChange inserting `text` at (line, character)."""
        self._versions[uri] = self._versions.get(uri, 0) + 1
        position = types.Position(line=line, character=character)
        self.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=uri, version=self._versions[uri]
                ),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=position, end=position), text=text
                    )
                ],
            )
        )

    async def inline(self, uri: str, line: int, character: int) -> list[types.InlineCompletionItem]:
        result = await self.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic
                ),
            )
        )
        if result is None:
            return []
        return list(result.items if isinstance(result, types.InlineCompletionList) else result)

    async def complete(self, uri: str, line: int, character: int) -> list[types.CompletionItem]:
        result = await self.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
            )
        )
        if result is None:
            return []
        return list(result.items if isinstance(result, types.CompletionList) else result)

    async def hover(self, uri: str, line: int, character: int) -> str | None:
        result = await self.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
            )
        )
        if result is None:
            return None
        contents = result.contents
        return contents.value if isinstance(contents, types.MarkupContent) else str(contents)

    async def code_actions(self, uri: str, line: int, character: int) -> list[str]:
        position = types.Position(line=line, character=character)
        result = await self.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=types.Range(start=position, end=position),
                context=types.CodeActionContext(diagnostics=[]),
            )
        )
        return [action.title for action in result or []]

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.shutdown_async(None), timeout=10)
            self.exit(None)
        except Exception:
            pass
        await self.stop()
        if self._drain is not None:
            self._drain.cancel()


def plain(value: Any) -> Any:
    """pygls hands custom results back as namedtuple-like objects: make them dicts."""
    if hasattr(value, "_asdict"):
        return {key: plain(item) for key, item in value._asdict().items()}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value
