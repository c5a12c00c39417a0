"""Adaptive debounce for automatic (as-you-type) requests, in the manner of Tabby.

A request that the next keystroke will supersede is wasted work on the one generation
thread, and it delays the request that matters. From the rhythm of a document's
automatic requests (the gap between them), the engine's recent latency and whether the
previous request was still unanswered when this one came, `delay` says how long to wait
before starting a generation: nothing while every answer arrives before the next key, a
little more than the usual gap between keys when the user types faster than the engine
answers. Explicit invocations never wait.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

MAX_DELAY_S = 0.15  # never wait longer than this for a request
GAP_FACTOR = 1.5  # wait this many typical gaps: most next keys arrive within it
PAUSE_S = 1.0  # a gap longer than this is a pause, not the typing rhythm
SMOOTHING = 0.3  # weight of the newest sample in the moving averages


@dataclass
class _Rhythm:
    last: float | None = None
    gap: float | None = None  # moving average of gaps between keystrokes, seconds
    text_key: int | None = None  # the document as the last `paused` call saw it (hash)


@dataclass
class Debounce:
    """Per-document typing rhythm plus the engine's latency, both moving averages."""

    latency: float | None = None  # seconds a model answer takes lately
    _documents: dict[str, _Rhythm] = field(default_factory=dict)

    def observe_latency(self, seconds: float) -> None:
        """A model answer took `seconds` (cache hits and templates do not count)."""
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency += SMOOTHING * (seconds - self.latency)

    def delay(self, uri: str, now: float | None = None, overtaken: bool = True) -> float:
        """Record an automatic request for `uri` and return how long to wait, in seconds.

        `overtaken`: the previous request for `uri` was still unanswered (the user types
        faster than the answers come); when it was answered, nothing is gained by waiting.
        """
        now = time.monotonic() if now is None else now
        rhythm = self._documents.setdefault(uri, _Rhythm())
        if len(self._documents) > 256:  # forget documents nobody types in
            oldest = min(self._documents, key=lambda key: self._documents[key].last or 0.0)
            del self._documents[oldest]
        if rhythm.last is not None:
            gap = now - rhythm.last
            if gap <= PAUSE_S:
                rhythm.gap = gap if rhythm.gap is None else rhythm.gap + SMOOTHING * (
                    gap - rhythm.gap)
        rhythm.last = now
        if not overtaken or rhythm.gap is None or self.latency is None:
            return 0.0
        if rhythm.gap >= self.latency:
            return 0.0  # the answer usually arrives before the next key
        return min(MAX_DELAY_S, GAP_FACTOR * rhythm.gap)

    def paused(self, uri: str, text: str, now: float | None = None) -> bool:
        """Whether an automatic request for `uri` comes after a pause rather than a
        keystroke: the document is as it was at the previous request, which came more
        than PAUSE_S ago (the editor asked again without an edit). Call it before
        `delay`, which records this request's time."""
        now = time.monotonic() if now is None else now
        rhythm = self._documents.get(uri)
        key = hash(text)
        if rhythm is None:
            self._documents[uri] = _Rhythm(text_key=key)
            return False
        unchanged, rhythm.text_key = rhythm.text_key == key, key
        return unchanged and rhythm.last is not None and now - rhythm.last > PAUSE_S

    def forget(self, uri: str) -> None:
        self._documents.pop(uri, None)
