"""The server's side of history: outcomes in memory (always), rows on disk (when enabled).

The LSP handlers call `shown`, `accepted`, `expire` and `event` with plain values; each
returns at once (the disk is the writer thread's business, see store.py). `retention`
follows accepted suggestions (retention.py); its checks land here as rows.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.history.outcomes import (
    ACCEPTED,
    PARTIAL,
    REJECTED,
    SHOWN,
    Decision,
    OutcomeTracker,
    surface_of,
)
from companion.history.retention import Check, RetentionTracker
from companion.history.store import (
    EventRow,
    HistoryStore,
    OutcomeUpdate,
    RetentionRow,
    SuggestionRow,
    database_path,
)

if TYPE_CHECKING:
    from companion.engine.completer import Suggestion

log = logging.getLogger(__name__)


def acceptance_rate(shown: int, kept: int) -> float | None:
    """Share of shown suggestions kept in whole or in part; None before any was shown."""
    return round(kept / shown, 4) if shown > 0 else None


class History:
    """Outcomes of the suggestions shown in this session, and the history database."""

    def __init__(self, warn: Callable[[str], Any] = log.warning,
                 clock: Callable[[], float] = time.monotonic,
                 directory: Path | None = None,
                 retention: RetentionTracker | None = None) -> None:
        self.tracker = OutcomeTracker(clock)
        self.retention = retention or RetentionTracker()
        self.retention.on_check = self._retention_checked
        self.counts: dict[str, Counter[str]] = {"inline": Counter(), "completion": Counter()}
        self.enabled = False
        self.keep_text = False
        self._warn = warn
        self._directory = directory
        self._store: HistoryStore | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> HistoryStore | None:
        return self._store

    def configure(self, enabled: bool, keep_text: bool) -> None:
        """Apply historyEnabled / historyKeepText; the writer starts or stops (no waiting)."""
        with self._lock:
            self.keep_text = keep_text
            self.enabled = enabled
            if enabled and self._store is None:
                self._store = HistoryStore(database_path(self._directory), self._warn)
            elif not enabled and self._store is not None:
                store, self._store = self._store, None
                store.close(timeout=0)  # writes what is queued, then stops

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (at most `timeout` seconds) and stop the writer (and the
        retention checks still to come)."""
        self.retention.close()
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close(timeout)

    # -- suggestions -----------------------------------------------------------------------

    def shown(
        self,
        uri: str,
        suggestion: Suggestion,
        trigger: str,
        language: str = "",
        backend: str = "",
        model: str = "",
        fallback_reason: str = "",
    ) -> str:
        """Record a suggestion about to be shown; returns the id the client echoes back."""
        suggestion_id = uuid.uuid4().hex[:16]
        decisions = self.tracker.shown(suggestion_id, uri, trigger, len(suggestion.text))
        self.counts[surface_of(trigger)][SHOWN] += 1
        self._apply(decisions)
        store = self._store
        if store is not None:
            store.add_suggestion(SuggestionRow(
                id=suggestion_id,
                created=time.time(),
                language=language,
                backend=backend,
                model=model,
                trigger=trigger,
                source=suggestion.source,
                prompt_tokens=suggestion.prompt_tokens,
                tokens=suggestion.tokens,
                cached_tokens=suggestion.cached_tokens,
                context_ms=round(suggestion.context_ms, 2),
                prefill_ms=round(suggestion.prefill_ms, 2),
                decode_ms=round(suggestion.decode_ms, 2),
                total_ms=round(suggestion.latency_ms, 2),
                chars=len(suggestion.text),
                finish_reason=suggestion.finish_reason,
                fallback_reason=fallback_reason if suggestion.source == "templates" else "",
                text=suggestion.text if self.keep_text else None,
            ))
        return suggestion_id

    def accepted(self, suggestion_id: str, accepted_chars: int | None = None
                 ) -> Decision | None:
        """The client ran the accept command: the whole suggestion, or `accepted_chars` of
        it. None for an unknown id."""
        decision = self.tracker.accepted(suggestion_id, accepted_chars)
        if decision is not None and not (decision.previous == decision.outcome == ACCEPTED):
            self._apply([decision])
        return decision

    def expire(self) -> list[Decision]:
        """Reject what was shown 10 s ago and never accepted (call it from a timer)."""
        decisions = self.tracker.expire()
        self._apply(decisions)
        return decisions

    def _apply(self, decisions: list[Decision]) -> None:
        store = self._store
        for decision in decisions:
            counts = self.counts[surface_of(decision.trigger)]
            if decision.outcome != decision.previous:
                if decision.previous != SHOWN:
                    counts[decision.previous] -= 1
                counts[decision.outcome] += 1
            if store is not None:
                store.set_outcome(OutcomeUpdate(decision.id, decision.outcome,
                                                decision.accepted_chars, time.time()))

    def _retention_checked(self, check: Check) -> None:
        store = self._store
        if store is not None:
            store.add_retention(RetentionRow(time.time(), check.id, check.checkpoint,
                                             check.after_s, check.state, check.score,
                                             check.kept, check.baseline))

    # -- model events ----------------------------------------------------------------------

    def event(self, kind: str, backend: str = "", model: str = "", detail: str = "",
              seconds: float | None = None) -> None:
        store = self._store
        if store is not None:
            store.add_event(EventRow(time.time(), kind, backend, model, detail, seconds))

    # -- status ----------------------------------------------------------------------------

    def summary(self, surface: str = "inline") -> dict[str, Any]:
        counts = self.counts[surface]
        kept = counts[ACCEPTED] + counts[PARTIAL]
        return {
            "shown": counts[SHOWN],
            "accepted": counts[ACCEPTED],
            "partiallyAccepted": counts[PARTIAL],
            "rejected": counts[REJECTED],
            "acceptanceRate": acceptance_rate(counts[SHOWN], kept),
        }

    def info(self) -> dict[str, Any]:
        store = self._store
        return {
            "enabled": self.enabled,
            "keepText": self.keep_text,
            **(store.info() if store is not None else {"path": None}),
        }
