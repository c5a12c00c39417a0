"""A small LSP client that drives `companion serve` over stdio (demo, bench, doctor).

It is an ordinary pygls LanguageClient plus: the server's stderr drained into a ring
buffer (an undrained pipe would block the server once full), typed helpers for the
requests the tools make, and no waiting on a dead or silent server: every request races
the server's exit (noticed at once) and a timeout, and fails with `ServerGone` carrying
the server's last stderr lines.
"""

from __future__ import annotations

import asyncio
import collections
import os
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from companion import __version__

T = TypeVar("T")

# How long one request may take before the server counts as not answering (a cold hover
# explanation on a slow CPU is the slowest thing asked).
REQUEST_TIMEOUT_S = 120.0
STATUS_TIMEOUT_S = 30.0


class ServerGone(RuntimeError):
    """The server exited, or stopped answering; the message says which, with its last
    stderr lines."""


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
        self.exit_code: int | None = None
        self._exited = asyncio.Event()

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
        result = await self.call("initialize", self.initialize_async(
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
        ))
        self.server_capabilities = result.capabilities
        self.initialized(types.InitializedParams())
        return time.perf_counter() - started

    async def server_exit(self, server: asyncio.subprocess.Process) -> None:
        """pygls calls this as soon as the server process ends."""
        self.exit_code = server.returncode
        self._exited.set()

    def gone_message(self, what: str) -> str:
        code = self.exit_code
        if code is None:
            why = f"stopped answering ({what})"
        elif code < 0:
            why = f"exited by signal {-code} ({what})"
        else:
            why = f"exited with code {code} ({what})"
        lines = [line for line in self.stderr_tail if line.strip()][-8:]
        tail = "".join(f"\n  server: {line}" for line in lines)
        return f"the language server {why}{tail}"

    async def call(self, what: str, request: Awaitable[T],
                   timeout: float = REQUEST_TIMEOUT_S) -> T:
        """`request`'s result, or ServerGone once the server exits or `timeout` passes."""
        if self._exited.is_set():
            if asyncio.iscoroutine(request):
                request.close()
            raise ServerGone(self.gone_message(what))
        task: asyncio.Future[T] = asyncio.ensure_future(request)
        exited: asyncio.Future[Any] = asyncio.ensure_future(self._exited.wait())
        racing: set[asyncio.Future[Any]] = {task, exited}
        try:
            await asyncio.wait(racing, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if task.done() and not self._exited.is_set():
            return task.result()
        if task.done() and task.exception() is None:
            return task.result()
        task.cancel()
        if self._exited.is_set():
            # Let the stderr reader catch the server's last words.
            await asyncio.sleep(0.1)
            raise ServerGone(self.gone_message(what))
        raise ServerGone(self.gone_message(f"{what}: no answer in {timeout:.0f} s"))

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    async def status(self) -> dict[str, Any]:
        result = await self.call("companion/status", self.protocol.send_request_async(
            "companion/status", {}), STATUS_TIMEOUT_S)
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

    def focus(self, uri: str, line: int) -> None:
        """companion/didFocus: the editor shows `uri` with its cursor on `line` (as the
        extension reports a change of active editor)."""
        self.protocol.notify("companion/didFocus", {"textDocument": {"uri": uri},
                                                    "position": {"line": line, "character": 0}})

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

    async def inline(self, uri: str, line: int, character: int, invoked: bool = False
                     ) -> list[types.InlineCompletionItem]:
        """Ghost text at a position: as the editor asks while the user types (automatic:
        the typing budget), or `invoked` as the shortcut does (the whole inline deadline)."""
        kind = (types.InlineCompletionTriggerKind.Invoked if invoked
                else types.InlineCompletionTriggerKind.Automatic)
        result = await self.call("inline completion", self.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
                context=types.InlineCompletionContext(trigger_kind=kind),
            )
        ))
        if result is None:
            return []
        return list(result.items if isinstance(result, types.InlineCompletionList) else result)

    async def complete(self, uri: str, line: int, character: int) -> list[types.CompletionItem]:
        result = await self.call("completion", self.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
            )
        ))
        if result is None:
            return []
        return list(result.items if isinstance(result, types.CompletionList) else result)

    async def hover(self, uri: str, line: int, character: int) -> str | None:
        result = await self.call("hover", self.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
            )
        ))
        if result is None:
            return None
        contents = result.contents
        return contents.value if isinstance(contents, types.MarkupContent) else str(contents)

    async def code_actions(self, uri: str, line: int, character: int) -> list[str]:
        position = types.Position(line=line, character=character)
        result = await self.call("code actions", self.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=types.Range(start=position, end=position),
                context=types.CodeActionContext(diagnostics=[]),
            )
        ))
        return [action.title for action in result or []]

    async def close(self) -> None:
        if not self._exited.is_set():
            try:
                await asyncio.wait_for(self.shutdown_async(None), timeout=10)
                self.exit(None)
            except Exception:
                pass
        try:
            await asyncio.wait_for(self.stop(), timeout=10)
        except Exception:  # a server that ignores exit is killed
            process = self._server
            if process is not None and process.returncode is None:
                process.kill()
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
