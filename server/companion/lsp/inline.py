"""textDocument/inlineCompletion: ghost text at the cursor (LSP 3.18).

Also holds `suggestion_at`, the guarded path from an LSP position to a Suggestion that
textDocument/completion shares.
"""

from __future__ import annotations

import asyncio
import logging
import time

from lsprotocol import types

from companion.engine.completer import Suggestion
from companion.engine.context import PositionError
from companion.engine.health import template_reason
from companion.history.outcomes import ACCEPTED, REJECT_AFTER_S, surface_of
from companion.lsp.server import CompanionServer

log = logging.getLogger(__name__)

MAX_DOCUMENT_CHARS = 4_000_000  # past this a document is not sent to the model
ACCEPT_COMMAND = "companion.accepted"



def record_shown(ls: CompanionServer, uri: str, suggestion: Suggestion, trigger: str) -> str:
    """Record a suggestion about to be shown (trigger: automatic | invoked |
    completion-item); returns the id its accept command carries. Never waits on the disk."""
    document = ls.workspace.text_documents.get(uri)
    current = ls.engine.current
    backend, model = ls.model_names()
    suggestion_id = ls.history.shown(
        uri,
        suggestion,
        trigger,
        language=(document.language_id if document is not None else "") or "",
        backend=backend,
        model=model,
        fallback_reason=template_reason(current.state, current.reason,
                                        current.spec is not None, ls.engine.health),
    )
    # Not accepted within 10 s: rejected (unless a newer suggestion decided it first).
    asyncio.get_running_loop().call_later(REJECT_AFTER_S + 0.05, ls.history.expire)
    return suggestion_id


def accept_arguments(suggestion_id: str, source: str) -> list[object]:
    """The accept command's arguments; a client may add `acceptedChars` for a partial
    accept (a word or a line of the suggestion)."""
    return [{"id": suggestion_id, "source": source}]


def open_documents(ls: CompanionServer, uri: str) -> dict[str, str]:
    """The other open documents (path → text): the repository context's similar code."""
    return {document.path: document.source for key, document in
            list(ls.workspace.text_documents.items())
            if key != uri and len(document.source) <= MAX_DOCUMENT_CHARS // 10}


async def suggestion_at(
    ls: CompanionServer, uri: str, position: types.Position, kind: str,
    automatic: bool = False,
) -> Suggestion | None:
    """The suggestion at `position` of `uri`, or None (with one log line) when the
    document or position is unusable. Cancellation propagates to pygls."""
    started = time.perf_counter()
    ls.engine.metrics.count(kind)
    document = ls.document(uri)
    if document is None:
        return None
    text = document.source
    if len(text) > MAX_DOCUMENT_CHARS or "\x00" in text[:MAX_DOCUMENT_CHARS]:
        ls.log_line(f"{uri}: too large or binary for suggestions ({len(text)} chars)",
                    types.MessageType.Warning)
        return None
    try:
        suggestion = await ls.engine.complete(
            text,
            position.line,
            position.character,
            uri,
            language=document.language_id or "python",
            path=document.path,
            encoding=ls.position_encoding,
            automatic=automatic,
            documents=open_documents(ls, uri),
        )
    except PositionError as error:
        ls.log_line(f"{kind} at {uri}: {error}", types.MessageType.Warning)
        return None
    except asyncio.CancelledError:
        ls.engine.metrics.count("cancelled")
        raise
    except Exception:
        log.exception("%s failed at %s:%s", kind, uri, position)
        ls.engine.metrics.count("errors")
        return None
    finally:
        ls.note_model_trouble()
    ls.engine.metrics.observe(kind, (time.perf_counter() - started) * 1000)
    return suggestion


def register(server: CompanionServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: CompanionServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        """Ghost text at the cursor from the model (templates while none is loaded)."""
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        suggestion = await suggestion_at(ls, params.text_document.uri, params.position, "inline",
                                         automatic)
        if suggestion is None or not suggestion.text:
            return types.InlineCompletionList(items=[])
        suggestion_id = record_shown(ls, params.text_document.uri, suggestion,
                                     "automatic" if automatic else "invoked")
        ls.engine.metrics.count("shown")
        return types.InlineCompletionList(
            items=[
                types.InlineCompletionItem(
                    insert_text=suggestion.text,
                    range=types.Range(start=params.position, end=params.position),
                    command=types.Command(
                        title="Companion: suggestion accepted",
                        command=ACCEPT_COMMAND,
                        arguments=accept_arguments(suggestion_id, suggestion.source),
                    ),
                )
            ]
        )

    @server.command(ACCEPT_COMMAND)
    def accepted(ls: CompanionServer, *args: object) -> None:
        """The client accepted a suggestion, or `acceptedChars` of it: record it (locally,
        never sent anywhere)."""
        first = args[0] if args else None
        suggestion_id = first.get("id") if isinstance(first, dict) else None
        chars = first.get("acceptedChars") if isinstance(first, dict) else None
        if chars is not None and (isinstance(chars, bool) or not isinstance(chars, int)
                                  or chars < 0):
            ls.log_line(f"accept with an invalid acceptedChars {chars!r} ignored",
                        types.MessageType.Warning)
            return
        decision = ls.history.accepted(suggestion_id, chars) if isinstance(
            suggestion_id, str) else None
        if decision is None:
            ls.log_line(f"accept for an unknown suggestion {suggestion_id!r}",
                        types.MessageType.Warning)
            return
        if decision.outcome == ACCEPTED and decision.previous != ACCEPTED:
            inline = surface_of(decision.trigger) == "inline"
            ls.engine.metrics.count("accepted" if inline else "completionItemAccepted")
