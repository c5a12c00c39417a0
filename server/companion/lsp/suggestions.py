"""What inline completion and completion items share: the guarded path from an LSP
position to a Suggestion (`suggestion_at`), recording a shown suggestion, and the
`companion.accepted` command the editor runs when one is kept."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

from lsprotocol import types

from companion.engine.completer import Suggestion
from companion.engine.context import PositionError
from companion.engine.health import template_reason
from companion.history.outcomes import ACCEPTED, PARTIAL, REJECT_AFTER_S, surface_of
from companion.lsp.server import MAX_DOCUMENT_CHARS, CompanionServer, suggestable

log = logging.getLogger(__name__)

ACCEPT_COMMAND = "companion.accepted"

# Where the latest suggestions were asked for (by identity: record_shown is called with the
# Suggestion suggestion_at returned), so that record_shown knows the position without its
# callers passing it. A few entries: each is taken by the record_shown that follows.
_ASKED_AT: OrderedDict[int, tuple[Suggestion, str, types.Position]] = OrderedDict()
_ASKED_KEEP = 16


def _asked_at(suggestion: Suggestion, uri: str) -> types.Position | None:
    entry = _ASKED_AT.pop(id(suggestion), None)
    if entry is None or entry[0] is not suggestion or entry[1] != uri:
        return None
    return entry[2]


def record_shown(ls: CompanionServer, uri: str, suggestion: Suggestion, trigger: str,
                 position: types.Position | None = None) -> str:
    """Record a suggestion about to be shown (trigger: automatic | invoked |
    completion-item) at `position` (default: where suggestion_at asked for it); returns
    the id its accept command carries. Never waits on the disk."""
    asked = _asked_at(suggestion, uri)
    position = position or asked
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
    if document is not None and position is not None:
        # In memory only: where it was shown and its text, for the retention checks.
        ls.history.retention.shown(suggestion_id, uri, document.offset_at_position(position),
                                   suggestion.text)
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
    if not suggestable(text):
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
    if suggestion.text:
        _ASKED_AT[id(suggestion)] = (suggestion, uri, position)
        while len(_ASKED_AT) > _ASKED_KEEP:
            _ASKED_AT.popitem(last=False)
    return suggestion


def register(server: CompanionServer) -> None:
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
        if decision.outcome in (ACCEPTED, PARTIAL):
            follow_retention(ls, decision.id, decision.accepted_chars)


def follow_retention(ls: CompanionServer, suggestion_id: str, accepted_chars: int) -> None:
    """Check 30 s, 2 min and 10 min from now whether the accepted text is still there."""

    def text_of(uri: str) -> str | None:
        document = ls.workspace.text_documents.get(uri)
        return document.source if document is not None else None

    why = ls.history.retention.accepted(suggestion_id, accepted_chars, text_of)
    if why == "closed":
        ls.log_line(f"accept of {suggestion_id} for a document that is not open: its "
                    "retention is not checked", types.MessageType.Warning)
    elif why == "full":
        log.info("retention of %s not checked: %d accepted suggestions are followed",
                 suggestion_id, ls.history.retention.max_pending)
