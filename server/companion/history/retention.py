"""Is accepted code still there? Retention of accepted suggestions, checked locally.

Copilot checks whether accepted code survives 15 / 30 / 120 / 300 / 600 s later; here an
accepted suggestion is checked 30 s, 2 min and 10 min after its accept
(`COMPANION_RETENTION_DELAYS_S` overrides, e.g. "0.3,0.6,0.9" in tests).

Each check looks for the accepted text between the code that preceded it and the code
that followed it when it was accepted (48 characters each side, found again however far
lines inserted above moved them), and takes the substring there closest to the accepted
text by character edit distance (`match_within`, in `text_match.py`): code typed next
to it costs nothing, edits inside it do. When that code was edited too, it looks from
where the text should start or end now — where it went in; shifted by how much the
document grew or shrank; after the preceding code, before the following code
(`anchors`, `match_at`). The score is Copilot's `1 − distance / len(accepted)`: 1.0
still there as accepted, 0.0 gone.

Kept: a score of at least `KEPT_AT` (0.5: half of its characters or more survive in
place) and `MARGIN` (0.1) above what the same check scores when the text is simply
deleted (its `baseline`, measured at accept time with the text cut out; 0 when the code
around it is found, the fallback's chance similarity otherwise). Measured on 500+ lines
and blocks of click, rich, jinja2 and httpx (each deleted, edited or moved, then
checked): deleted 0–1 % kept; replaced by another line of the same file 13 % (at 0.6:
8 %); moved by lines inserted above and below, text typed after it, or an identifier
renamed file-wide 97–100 %; one line of a 2–4 line block rewritten 97 % (at 0.6: 88 %);
an identifier renamed inside a short text 68 % (long names are most of a short line);
half of it deleted is the boundary (49 %). A suggestion that deleted would still look
kept (baseline above 1 − MARGIN: the same code follows it, nothing around it to tell)
is not followed. A closed document is unknown, not lost.

The accepted text and the few characters around it live in memory only, until the last
check; what is stored (when history is on) is the numbers. Checks are timers on the
event loop (`call_later`, one per followed suggestion at a time), never a thread or a
blocking wait, and at most `MAX_PENDING` suggestions are followed at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from companion.history.text_match import (
    TOLERANCE,
    Match,
    match_at,
    match_within,
    occurrences,
)

log = logging.getLogger(__name__)

DELAYS_ENV = "COMPANION_RETENTION_DELAYS_S"
DEFAULT_DELAYS_S: tuple[float, ...] = (30.0, 120.0, 600.0)
KEPT_AT = 0.5  # score for kept: at least half of the characters survive (see above)
MARGIN = 0.1  # and this much above the score of the text deleted
MAX_PENDING = 256  # suggestions followed at once; more accepts within 10 min are skipped
KEEP_SHOWN = 512  # shown suggestions remembered for a late accept (as outcomes.KEEP)
MAX_TEXT = 1000  # characters of an accepted suggestion followed (the rest is ignored)
CONTEXT = 48  # characters before/after the accepted text remembered to find it again

CHECKED, CLOSED = "checked", "closed"


def parse_delays(text: str | None) -> tuple[float, ...]:
    """The check delays from `COMPANION_RETENTION_DELAYS_S` ("30,120,600"); the default
    for an unset value, a warning and the default for a bad one."""
    if not text or not text.strip():
        return DEFAULT_DELAYS_S
    try:
        delays = tuple(sorted({float(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        delays = ()
    if not delays or delays[0] <= 0 or delays[-1] > 86400:
        log.warning("%s=%r is not a list of positive seconds; using %s", DELAYS_ENV, text,
                    ",".join(f"{d:g}" for d in DEFAULT_DELAYS_S))
        return DEFAULT_DELAYS_S
    return delays


def checkpoint_label(seconds: float) -> str:
    """30 → "30s", 120 → "2m", 600 → "10m", 0.3 → "0.3s"."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


# -- following accepted suggestions --------------------------------------------------


@dataclass
class _Shown:
    uri: str
    offset: int  # where the suggestion was shown (str index into the document then)
    text: str


@dataclass
class _Pending:
    id: str
    uri: str
    text: str
    start: int  # where the accepted text is expected (updated by each check that finds it)
    size: int  # the document's length when `start` was found
    before: str  # CONTEXT characters before it, then
    after: str  # and after it
    baseline: float = 0.0  # the score a check gives when the text was deleted
    step: int = 0  # the next check's index into the delays
    handle: asyncio.TimerHandle | None = None


@dataclass(frozen=True)
class Check:
    """One check's result: numbers only (no text)."""

    id: str
    checkpoint: str  # "30s" | "2m" | "10m" (or the label of an injected delay)
    after_s: float
    state: str  # checked | closed (the document was not open: unknown)
    score: float | None = None
    kept: bool | None = None
    baseline: float | None = None


@dataclass
class _Counts:
    checked: int = 0
    kept: int = 0
    unknown: int = 0
    score_sum: float = 0.0


@dataclass
class RetentionTracker:
    """The accepted suggestions followed in this session and what the checks found.
    Runs on the event loop's thread only (timers, LSP handlers)."""

    delays: tuple[float, ...] = field(
        default_factory=lambda: parse_delays(os.environ.get(DELAYS_ENV)))
    kept_at: float = KEPT_AT
    margin: float = MARGIN
    max_pending: int = MAX_PENDING
    on_check: Callable[[Check], Any] | None = None
    skipped: int = 0  # accepts not followed: MAX_PENDING were pending
    indistinct: int = 0  # accepts not followed: deleted, they would still look kept
    _shown: OrderedDict[str, _Shown] = field(default_factory=OrderedDict)
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _counts: dict[str, _Counts] = field(default_factory=dict)

    def shown(self, suggestion_id: str, uri: str, offset: int, text: str) -> None:
        """Remember where a suggestion was shown (in memory, for its accept)."""
        self._shown[suggestion_id] = _Shown(uri, offset, text)
        while len(self._shown) > KEEP_SHOWN:
            self._shown.popitem(last=False)

    def accepted(self, suggestion_id: str, accepted_chars: int,
                 text_of: Callable[[str], str | None],
                 loop: asyncio.AbstractEventLoop | None = None) -> str:
        """Follow an accepted suggestion (`accepted_chars` of it): the first check is
        scheduled `delays[0]` from now. Returns what happened: "following", or why not
        ("unknown", "empty", "closed", "full", "already", "indistinct")."""
        shown = self._shown.get(suggestion_id)
        if shown is None:
            return "unknown"
        text = shown.text[:min(accepted_chars, MAX_TEXT)]
        if not text.strip():
            return "empty"
        previous = self._pending.get(suggestion_id)
        if previous is not None:
            if len(previous.text) >= len(text):
                return "already"
            self._cancel(previous)  # a partial accept, then more of it: follow the longer
        elif len(self._pending) >= self.max_pending:
            self.skipped += 1
            return "full"
        document = text_of(shown.uri)
        if document is None:
            return "closed"
        # The editor inserted it before running the command: find it where it went in.
        found = match_at(document, text, starts=[shown.offset], tolerance=2 * TOLERANCE)
        start = found.start if found.score >= self.kept_at else shown.offset
        end = start + len(text)
        pending = _Pending(suggestion_id, shown.uri, text, start, len(document),
                           document[max(0, start - CONTEXT):start], document[end:end + CONTEXT])
        pending.baseline = self._score(pending, document[:start] + document[end:])
        if pending.baseline > 1.0 - self.margin:
            self.indistinct += 1
            return "indistinct"
        self._pending[suggestion_id] = pending
        self._schedule(pending, text_of, loop or asyncio.get_running_loop(), 0.0)
        return "following"

    def _schedule(self, pending: _Pending, text_of: Callable[[str], str | None],
                  loop: asyncio.AbstractEventLoop, elapsed: float) -> None:
        delay = self.delays[pending.step] - elapsed
        pending.handle = loop.call_later(max(0.0, delay), self._fire, pending.id, text_of,
                                         loop)

    def _cancel(self, pending: _Pending) -> None:
        if pending.handle is not None:
            pending.handle.cancel()
        self._pending.pop(pending.id, None)

    def _fire(self, suggestion_id: str, text_of: Callable[[str], str | None],
              loop: asyncio.AbstractEventLoop) -> None:
        pending = self._pending.get(suggestion_id)
        if pending is None:
            return
        try:
            check = self.check(pending, text_of(pending.uri))
        except Exception:  # a bug here must cost one check, never the server
            log.exception("retention check of %s failed", suggestion_id)
            check = None
        if check is not None:
            self._count(check)
            if self.on_check is not None:
                try:
                    self.on_check(check)
                except Exception:
                    log.exception("recording the retention check of %s failed",
                                  suggestion_id)
        pending.step += 1
        if pending.step >= len(self.delays):
            self._pending.pop(suggestion_id, None)
            return
        self._schedule(pending, text_of, loop, self.delays[pending.step - 1])

    def anchors(self, pending: _Pending, document: str) -> tuple[list[int], list[int]]:
        """Where the accepted text may start and end now: where it was; shifted by how
        much the document grew or shrank (lines inserted above); after the code that
        came before it, before the code that came after it (the occurrences nearest the
        shift)."""
        size = len(document)
        shift = pending.start + size - pending.size
        starts = {min(pending.start, size), max(0, min(shift, size))}
        ends = {min(pending.start + len(pending.text), size),
                max(0, min(shift + len(pending.text), size))}
        for context, is_before in ((pending.before, True), (pending.after, False)):
            if len(context.strip()) < 4:
                continue  # blank or almost: found everywhere
            hits = occurrences(document, context, limit=64)
            for hit in sorted(hits, key=lambda h: abs(h - shift))[:1]:
                if is_before:
                    starts.add(hit + len(context))
                else:
                    ends.add(hit)
        return sorted(starts), sorted(ends)

    def check(self, pending: _Pending, document: str | None) -> Check:
        """The check of `pending` against the document's text now (None: closed)."""
        delay = self.delays[pending.step]
        label = checkpoint_label(delay)
        if document is None:
            return Check(pending.id, label, delay, CLOSED)
        found = self._find(pending, document)
        score = found.score
        kept = score >= self.kept_at and score >= pending.baseline + self.margin
        if kept:  # follow it where it went, for the next check
            pending.start, pending.size = found.start, len(document)
        return Check(pending.id, label, delay, CHECKED, score, kept, pending.baseline)

    def _find(self, pending: _Pending, document: str) -> Match:
        """Between the code that preceded it and the code that followed it, when both
        are still there in order; else from where it should start or end."""
        region = self.region(pending, document)
        if region is not None:
            return match_within(document, pending.text, *region)
        starts, ends = self.anchors(pending, document)
        return match_at(document, pending.text, starts, ends)

    def region(self, pending: _Pending, document: str) -> tuple[int, int] | None:
        """[end of the preceding code, start of the following code) when both contexts
        are found (the preceding one nearest where the text should be) at most a few
        times the text's length apart."""
        if len(pending.before.strip()) < 4 or len(pending.after.strip()) < 4:
            return None
        shift = pending.start + len(document) - pending.size
        hits = occurrences(document, pending.before, limit=64)
        if not hits:
            return None
        lo = min(hits, key=lambda h: abs(h + len(pending.before) - shift)) + len(pending.before)
        # From a little before: deleted with its line, the contexts now overlap.
        hi = document.find(pending.after, max(0, lo - len(pending.before)))
        if hi < 0 or hi - lo > 4 * len(pending.text) + 400:
            return None
        return lo, max(lo, hi)

    def _score(self, pending: _Pending, document: str) -> float:
        return self._find(pending, document).score

    def _count(self, check: Check) -> None:
        counts = self._counts.setdefault(check.checkpoint, _Counts())
        if check.state == CLOSED:
            counts.unknown += 1
            return
        counts.checked += 1
        counts.kept += bool(check.kept)
        counts.score_sum += check.score or 0.0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        """Stop every pending check (the server is going away)."""
        for pending in list(self._pending.values()):
            self._cancel(pending)

    def summary(self) -> dict[str, Any]:
        """This session's retention: the share kept at each checkpoint (None before any
        check there), and the counts it comes from."""
        rows = [(checkpoint_label(d), d, self._counts.get(checkpoint_label(d), _Counts()))
                for d in self.delays]
        return retention_report(
            [(label, d, c.checked, c.kept, c.unknown, c.score_sum) for label, d, c in rows],
            self.kept_at, pending=self.pending,
            notFollowed={"full": self.skipped, "indistinct": self.indistinct})


def retention_report(rows: Sequence[tuple[str, float, int, int, int, float]],
                     kept_at: float, **extra: Any) -> dict[str, Any]:
    """The retention payload status and stats share, from rows of (checkpoint, seconds,
    checked, kept, unknown, sum of scores): {"checkpoints": [{"after": "30s", "afterS":
    30.0, "rate": share kept (None before any check), "checked", "kept", "unknown",
    "meanScore"}, …], "keptAt": …}. A list, not keys like "30s": pygls-based clients
    turn keys that are not identifiers into "_0", "_1"."""
    return {
        "checkpoints": [
            {"after": label, "afterS": seconds,
             "rate": round(kept / checked, 4) if checked else None,
             "checked": checked, "kept": kept, "unknown": unknown,
             "meanScore": round(total / checked, 4) if checked else None}
            for label, seconds, checked, kept, unknown, total in rows
        ],
        "keptAt": kept_at,
        **extra,
    }
