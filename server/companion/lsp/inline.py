"""textDocument/inlineCompletion: ghost text at the cursor (LSP 3.18).

Also holds `suggestion_at`, the guarded path from an LSP position to a Suggestion that
textDocument/completion shares.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict

from lsprotocol import types

from companion.engine.completer import Suggestion
from companion.engine.context import PositionError
from companion.lsp.server import CompanionServer

log = logging.getLogger(__name__)

MAX_DOCUMENT_CHARS = 4_000_000  # past this a document is not sent to the model
ACCEPT_COMMAND = "companion.accepted"

# Suggestions shown recently, by id, so an accept can be matched to what was shown.
_shown: OrderedDict[str, tuple[str, str, int]] = OrderedDict()


def remember_shown(uri: str, suggestion: Suggestion) -> str:
    """An id for a suggestion that is about to be shown."""
    suggestion_id = uuid.uuid4().hex[:12]
    _shown[suggestion_id] = (uri, suggestion.source, len(suggestion.text))
    while len(_shown) > 256:
        _shown.popitem(last=False)
    return suggestion_id


def take_shown(suggestion_id: str) -> tuple[str, str, int] | None:
    return _shown.pop(suggestion_id, None)


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
        suggestion_id = remember_shown(params.text_document.uri, suggestion)
        ls.engine.metrics.count("shown")
        return types.InlineCompletionList(
            items=[
                types.InlineCompletionItem(
                    insert_text=suggestion.text,
                    range=types.Range(start=params.position, end=params.position),
                    command=types.Command(
                        title="Companion: suggestion accepted",
                        command=ACCEPT_COMMAND,
                        arguments=[{"id": suggestion_id, "source": suggestion.source}],
                    ),
                )
            ]
        )

    @server.command(ACCEPT_COMMAND)
    def accepted(ls: CompanionServer, *args: object) -> None:
        """The client accepted a suggestion: count it (locally, never sent anywhere)."""
        first = args[0] if args else None
        suggestion_id = first.get("id") if isinstance(first, dict) else None
        if isinstance(suggestion_id, str) and take_shown(suggestion_id) is not None:
            ls.engine.metrics.count("accepted")
        else:
            ls.log_line(f"accept for an unknown suggestion {suggestion_id!r}",
                        types.MessageType.Warning)
