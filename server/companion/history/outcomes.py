"""What became of each suggestion shown: accepted, partially accepted, rejected.

Continue's rule, decided here in the server: a suggestion on screen for at least 250 ms
that is not accepted within 10 s — or that a newer suggestion for the same document on
the same surface (ghost text, completion list) replaced — was rejected. One replaced
sooner was never really seen and keeps the outcome "shown". An accept that arrives later
still wins: the user kept it. A partial accept (a word, a line) is never turned into a
rejection, and a full accept afterwards upgrades it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

SEEN_AFTER_S = 0.25
REJECT_AFTER_S = 10.0
KEEP = 512  # suggestions remembered for a late accept

SHOWN, ACCEPTED, PARTIAL, REJECTED = "shown", "accepted", "partial", "rejected"


def surface_of(trigger: str) -> str:
    """Suggestions replace each other only on the same surface."""
    return "completion" if trigger == "completion-item" else "inline"


@dataclass
class Shown:
    id: str
    uri: str
    trigger: str
    chars: int
    shown_at: float
    outcome: str = SHOWN
    accepted_chars: int = 0
    live: bool = True  # still waiting for the 10 s or a newer suggestion to decide


@dataclass(frozen=True)
class Decision:
    """A change of outcome, for the database and the session counters."""

    id: str
    trigger: str
    outcome: str
    previous: str
    accepted_chars: int
    chars: int


class OutcomeTracker:
    """The suggestions shown recently and their outcomes (thread-safe). Every operation
    touches only the suggestions it decides: showing one costs the same with 1 or 500
    remembered."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, keep: int = KEEP,
                 seen_after_s: float = SEEN_AFTER_S,
                 reject_after_s: float = REJECT_AFTER_S) -> None:
        self._clock = clock
        self._keep = keep
        self.seen_after_s = seen_after_s
        self.reject_after_s = reject_after_s
        self._shown: OrderedDict[str, Shown] = OrderedDict()  # for late accepts
        self._live: OrderedDict[str, Shown] = OrderedDict()  # undecided, oldest first
        self._live_at: dict[tuple[str, str], list[str]] = {}  # (uri, surface) → live ids
        self._lock = threading.Lock()

    def _close(self, record: Shown, now: float) -> Decision | None:
        """No accept came: the suggestion is gone from the screen (or timed out)."""
        record.live = False
        self._live.pop(record.id, None)
        if record.outcome != SHOWN or now - record.shown_at < self.seen_after_s:
            return None  # kept in part, or never seen long enough to judge
        record.outcome = REJECTED
        return Decision(record.id, record.trigger, REJECTED, SHOWN, 0, record.chars)

    def shown(self, suggestion_id: str, uri: str, trigger: str, chars: int) -> list[Decision]:
        """Record a suggestion about to be shown; returns what it replaced (rejections)."""
        now = self._clock()
        key = (uri, surface_of(trigger))
        decisions: list[Decision] = []
        with self._lock:
            for previous_id in self._live_at.pop(key, []):
                record = self._live.get(previous_id)
                if record is not None:
                    decision = self._close(record, now)
                    if decision is not None:
                        decisions.append(decision)
            record = Shown(suggestion_id, uri, trigger, chars, now)
            self._shown[suggestion_id] = self._live[suggestion_id] = record
            self._live_at[key] = [suggestion_id]
            while len(self._shown) > self._keep:
                self._shown.popitem(last=False)
        return decisions

    def accepted(self, suggestion_id: str, accepted_chars: int | None = None
                 ) -> Decision | None:
        """The user kept it: all of it (accepted_chars None or ≥ its length) or a part.
        None for an id never shown (or forgotten); a Decision with outcome == previous
        when nothing changed (a repeated accept)."""
        with self._lock:
            record = self._shown.get(suggestion_id)
            if record is None:
                return None
            previous = record.outcome
            if accepted_chars is None or accepted_chars >= record.chars:
                record.outcome, record.accepted_chars = ACCEPTED, record.chars
                record.live = False
                self._live.pop(record.id, None)
            elif previous != ACCEPTED:
                record.outcome = PARTIAL
                record.accepted_chars = max(record.accepted_chars, accepted_chars)
            return Decision(record.id, record.trigger, record.outcome, previous,
                            record.accepted_chars, record.chars)

    def expire(self) -> list[Decision]:
        """Decide every live suggestion shown `reject_after_s` ago or more."""
        now = self._clock()
        decisions: list[Decision] = []
        with self._lock:
            while self._live:
                record = next(iter(self._live.values()))
                if now - record.shown_at < self.reject_after_s:
                    break
                decision = self._close(record, now)
                if decision is not None:
                    decisions.append(decision)
            for key in [key for key, ids in self._live_at.items()
                        if not any(i in self._live for i in ids)]:
                del self._live_at[key]
        return decisions

    def outcome(self, suggestion_id: str) -> str | None:
        with self._lock:
            record = self._shown.get(suggestion_id)
            return record.outcome if record else None

    @property
    def live(self) -> int:
        with self._lock:
            return len(self._live)
