"""CompanionServer: initialize, settings, the background model load, document events.

Every feature lives in its own module (inline.py, completion.py, …) with a
`register(server)` function; `companion.lsp.create_server()` wires them all. This module
imports none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.workspace import TextDocument

from companion import __version__
from companion.config import Settings, parse_settings
from companion.engine.completer import Engine
from companion.engine.explanations import Explanations
from companion.history.recorder import History

log = logging.getLogger(__name__)

MAX_DOCUMENT_CHARS = 4_000_000  # past this a document is not sent to the model
FOCUS = "companion/didFocus"  # notification: {textDocument: {uri}, position: {line, character}}


def focus_of(params: Any) -> tuple[str, int] | None:
    """(uri, line) of a companion/didFocus notification, or None when malformed."""
    def field(value: Any, name: str) -> Any:
        return value.get(name) if isinstance(value, dict) else getattr(value, name, None)

    uri = field(field(params, "textDocument"), "uri")
    line = field(field(params, "position"), "line")
    if not isinstance(uri, str) or not uri or isinstance(line, bool) or not isinstance(
            line, int) or line < 0:
        return None
    return uri, line


def suggestable(text: str) -> bool:
    """Whether a document may go to the model: not huge, not binary."""
    return len(text) <= MAX_DOCUMENT_CHARS and "\x00" not in text[:MAX_DOCUMENT_CHARS]

_ANSWERED = object()  # a request already answered with an error: nothing more to do


class CompanionProtocol(LanguageServerProtocol):
    """pygls' protocol, except that a request whose params cannot be deserialized gets a
    JSON-RPC InvalidParams error instead of silence (the client would wait forever), and
    a request without `params` (allowed by JSON-RPC) is not dropped."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        if isinstance(data, dict) and "method" in data and "params" not in data:
            data = {**data, "params": None}  # JSON-RPC allows leaving params out
        try:
            return super().structure_message(data)
        except JsonRpcException:
            if isinstance(data, dict) and "id" in data and "method" in data:
                method = data.get("method")
                log.warning("invalid params for %s (request %s): answered -32602",
                            method, data["id"])
                self._send_response(
                    data["id"],
                    None,
                    JsonRpcInvalidParams(f"invalid params for {method}").to_response_error(),
                )
                return _ANSWERED
            raise

    def handle_message(self, message: Any) -> None:
        if message is _ANSWERED:
            return
        super().handle_message(message)


class CompanionServer(LanguageServer):
    """The language server: an Engine plus the LSP plumbing around it."""

    def __init__(self) -> None:
        super().__init__(
            "companion",
            __version__,
            protocol_cls=CompanionProtocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.engine = Engine()
        self.explanations = Explanations(self.engine)
        self._load_task: asyncio.Task[Any] | None = None
        self._warned: set[str] = set()
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self.history = History(warn=self._warn_from_thread)
        self.load_failures = 0  # loads that crashed or ended on templates unasked
        self.focus: tuple[str, int] | None = None  # (uri, line) the editor shows
        self._model_trouble_seen = {"modelErrors": 0, "modelHangs": 0, "engineCrashes": 0}
        self.engine.supervisor.on_event = self._warn_from_thread

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    # -- logging -------------------------------------------------------------------------

    def log_line(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """One line to the client's log (and stderr)."""
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, message)
        with contextlib.suppress(Exception):  # no client attached, or a closed pipe
            self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def warn_once(self, message: str) -> None:
        """A warning the user sees once per session (a popup plus the log)."""
        if message in self._warned:
            return
        self._warned.add(message)
        self.log_line(message, types.MessageType.Warning)
        with contextlib.suppress(Exception):
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Warning, message=message)
            )

    def _warn_from_thread(self, message: str) -> None:
        """A warning from a worker thread (the history writer): to the client's log."""
        loop = self._thread_loop
        if loop is None or loop.is_closed():
            log.warning("%s", message)
            return
        try:
            loop.call_soon_threadsafe(self.log_line, f"Companion: {message}",
                                      types.MessageType.Warning)
        except RuntimeError:  # the loop closed meanwhile
            log.warning("%s", message)

    # -- history -------------------------------------------------------------------------

    def model_names(self) -> tuple[str, str]:
        """(backend, model) serving now, as history records them."""
        current = self.engine.current
        return current.backend.name, current.spec.name if current.spec else ""

    def note_model_trouble(self) -> None:
        """Record model errors and hangs the engine counted since the last look."""
        metrics = self.engine.metrics
        for counter, kind in (("modelErrors", "model-error"), ("modelHangs", "hang"),
                              ("engineCrashes", "crash")):
            new = metrics.get(counter) - self._model_trouble_seen[counter]
            if new > 0:
                self._model_trouble_seen[counter] += new
                backend, model = self.model_names()
                for _ in range(min(new, 10)):
                    detail = (self.engine.supervisor.last_crash if kind == "crash"
                              else self.engine.health.last_error)
                    self.history.event(kind, backend, model, detail)

    # -- documents -----------------------------------------------------------------------

    def document(self, uri: str) -> TextDocument | None:
        """An open document, or None (logged) for a URI the client never opened."""
        document: TextDocument | None = self.workspace.text_documents.get(uri)
        if document is None:
            self.log_line(f"request for a document that is not open: {uri}",
                          types.MessageType.Warning)
        return document

    @property
    def position_encoding(self) -> str:
        encoding = self.workspace.position_encoding
        return str(getattr(encoding, "value", encoding) or "utf-16")

    # -- settings and model load ---------------------------------------------------------

    def apply_settings(self, raw: Any) -> bool:
        """Take new settings; True when the model has to be reloaded."""
        before = self.settings
        settings, warnings = parse_settings(raw, before)
        for warning in warnings:
            self.warn_once(f"Companion: {warning}")
        self.engine.settings = settings
        self.history.configure(settings.history_enabled, settings.history_keep_text)
        keys = ("backend", "model", "memory_budget_mb", "context_tokens", "threads",
                "endpoint", "api_key_env")
        return any(getattr(before, key) != getattr(settings, key) for key in keys)

    async def fetch_settings(self) -> bool:
        """Read `companion` through workspace/configuration when the client offers it."""
        capabilities = self.client_capabilities
        if not (capabilities.workspace and capabilities.workspace.configuration):
            return False
        try:
            values = await asyncio.wait_for(
                self.workspace_configuration_async(
                    types.ConfigurationParams(
                        items=[types.ConfigurationItem(section="companion")]
                    )
                ),
                timeout=5,
            )
        except Exception as error:
            self.log_line(f"workspace/configuration failed: {error}", types.MessageType.Warning)
            return False
        return self.apply_settings(values[0] if values else None)

    def start_loading(self, reset: bool = False) -> None:
        """(Re)load the model in the background; requests meanwhile get templates.
        `reset` (companion/restart) forgets this session's engine crashes."""
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        self._load_task = asyncio.ensure_future(self._load(reset))

    def _progress_supported(self) -> bool:
        window = self.client_capabilities.window
        return bool(window and window.work_done_progress)

    async def _load(self, reset: bool = False) -> None:
        token = f"companion-load-{uuid.uuid4()}"
        progress = self._progress_supported()
        loop = asyncio.get_running_loop()
        if progress:
            try:
                await self.work_done_progress.create_async(token)
                self.work_done_progress.begin(
                    token,
                    types.WorkDoneProgressBegin(
                        title="Companion: loading model",
                        message=self.settings.model or "embedded model",
                        cancellable=False,
                    ),
                )
            except Exception as error:
                log.warning("work-done progress refused by the client: %s", error)
                progress = False

        def on_step(message: str) -> None:
            loop.call_soon_threadsafe(self.log_line, f"Companion: {message}",
                                      types.MessageType.Warning)
            if progress:
                loop.call_soon_threadsafe(
                    self.work_done_progress.report,
                    token,
                    types.WorkDoneProgressReport(message=message),
                )

        try:
            state = await self.engine.reload(on_step, reset)
        except Exception as error:  # the ladder catches model errors; this is a bug
            log.exception("model load crashed")
            self.load_failures += 1
            self.history.event("load-failed", self.settings.backend, self.settings.model,
                               f"{error.__class__.__name__}: {error}")
            self.warn_once(f"Companion: model load failed ({error}); serving templates")
            return
        finally:
            if progress:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))
        self._record_load(state)
        info = state.backend.info()
        self.log_line(
            f"Companion: {info.name} · {info.model} on {info.device} "
            f"({state.state}, {state.load_seconds:.1f}s): {state.reason}"
        )
        if state.steps:
            self.warn_once(f"Companion: {state.steps[-1]}")


    def _record_load(self, state: Any) -> None:
        """The load and each step down the ladder, into history."""
        backend, model = state.backend.name, state.spec.name if state.spec else ""
        for step in state.steps:
            self.history.event("fallback", backend, model, step)
        if state.spec is None and self.settings.backend != "templates":
            self.load_failures += 1
        self.history.event("load", backend, model, f"{state.state}: {state.reason}",
                           round(state.load_seconds, 3))


def register(server: CompanionServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: CompanionServer, params: types.InitializeParams) -> None:
        """Read settings from initializationOptions."""
        ls._thread_loop = asyncio.get_running_loop()
        ls.apply_settings(params.initialization_options)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: CompanionServer, params: types.InitializedParams) -> None:
        """Read workspace settings, then load the model in the background."""
        await ls.fetch_settings()
        ls.start_loading()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: CompanionServer, params: types.DidChangeConfigurationParams
    ) -> None:
        """Re-read settings; reload the model when backend or model changed."""
        fetched = await ls.fetch_settings()
        reload = fetched or ls.apply_settings(params.settings)
        if reload:
            ls.log_line("Companion: settings changed, reloading the model")
            ls.start_loading()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: CompanionServer, params: types.DidOpenTextDocumentParams) -> None:
        """Warm the model's prefix cache for the new file (in the background): at the
        cursor when the editor said where it is (companion/didFocus), else its top."""
        document = params.text_document
        if suggestable(document.text):
            opened = ls.workspace.text_documents.get(document.uri)
            path = opened.path if opened is not None else ""
            line = ls.focus[1] if ls.focus is not None and ls.focus[0] == document.uri else None
            if line is not None:
                ls.engine.background.focus(document.uri)
            await ls.engine.warm(document.uri, document.text, document.language_id, path,
                                 line, ls.position_encoding)

    @server.feature(FOCUS)
    async def did_focus(ls: CompanionServer, params: Any) -> None:
        """The editor shows `textDocument` with its cursor at `position`: warm the prompt
        there (the narrow window first, then the full one), ahead of other documents'
        warm-ups."""
        focus = focus_of(params)
        if focus is None:
            ls.log_line(f"{FOCUS} with unusable params ignored: {params!r:.200}",
                        types.MessageType.Warning)
            return
        uri, line = focus
        ls.focus = focus
        document = ls.workspace.text_documents.get(uri)
        if document is None or not suggestable(document.source):
            return  # not opened yet: didOpen warms at this line
        ls.engine.background.focus(uri)
        await ls.engine.warm(uri, document.source, document.language_id or "python",
                             document.path, min(line, max(0, len(document.lines) - 1)),
                             ls.position_encoding)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: CompanionServer, params: None) -> None:
        """Stop generating, free the model, write the history still queued."""
        ls.engine.shutdown()
        ls.history.expire()
        ls.history.close(timeout=2.0)
