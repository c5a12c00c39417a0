"""Latency windows and counters for `companion/status` (in memory, bounded)."""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

# Shares are written as decimals (0.95) that binary floats hold slightly off: 0.95 * 20
# must count as rank 19, not 20.
_RANK_SLACK = 1e-9


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of `values` (`share` in 0..1); None when empty.

    Nearest rank: the smallest value that at least `share` of the values are less than or
    equal to, i.e. the ceil(share * n)-th smallest (1-based, at least the first). It is
    always one of the values, never an interpolation, and it does not depend on rounding
    ties: the median of an even count is the lower middle value ([100, 200, 300, 400] →
    200), of an odd count the middle one ([100, 200, 300] → 200).
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(share * len(ordered) - _RANK_SLACK)
    return ordered[min(len(ordered), max(1, rank)) - 1]


def summarize(values: list[float]) -> dict[str, float | None]:
    """p50, p95 and max (ms, one decimal) and the count of `values`."""
    def r(value: float | None) -> float | None:
        return round(value, 1) if value is not None else None

    return {
        "p50Ms": r(percentile(values, 0.5)),
        "p95Ms": r(percentile(values, 0.95)),
        "maxMs": r(max(values) if values else None),
        "count": len(values),
    }


@dataclass
class LatencyWindow:
    """The last `size` latencies of one request kind, in milliseconds."""

    size: int = 200
    values: deque[float] = field(default_factory=deque)

    def add(self, ms: float) -> None:
        self.values.append(ms)
        while len(self.values) > self.size:
            self.values.popleft()

    def summary(self) -> dict[str, float | None]:
        values = list(self.values)
        rounded = [round(v, 1) if v is not None else None for v in
                   (percentile(values, 0.5), percentile(values, 0.95))]
        return {
            "p50Ms": rounded[0],
            "p95Ms": rounded[1],
            "lastMs": round(values[-1], 1) if values else None,
            "count": len(values),
        }


class Metrics:
    """Counters and latency windows shared by the handlers (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.latency: dict[str, LatencyWindow] = {}
        self.generated_tokens = 0
        self.generation_seconds = 0.0

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def get(self, name: str) -> int:
        """One counter's value (cheaper than a snapshot)."""
        with self._lock:
            return self.counts[name]

    def observe(self, kind: str, ms: float) -> None:
        with self._lock:
            self.latency.setdefault(kind, LatencyWindow()).add(ms)

    def split(self, parts: dict[str, float]) -> None:
        """Where one model suggestion's time went (context, queue, prefill, decode, post):
        each part is a latency kind `split<Part>` (splitPrefill, …) in `latencyByKind`,
        so its `lastMs` belongs to the newest suggestion and its p50/p95 to the window.
        (No dots in the names: pygls's converter renames dotted keys.)"""
        with self._lock:
            for part, ms in parts.items():
                self.latency.setdefault(f"split{part.title()}", LatencyWindow()).add(ms)

    def generation(self, tokens: int, seconds: float) -> None:
        with self._lock:
            self.generated_tokens += tokens
            self.generation_seconds += seconds

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            rate = (
                self.generated_tokens / self.generation_seconds
                if self.generation_seconds > 0
                else None
            )
            return {
                "requests": dict(self.counts),
                "latency": {kind: w.summary() for kind, w in self.latency.items()},
                "generatedTokens": self.generated_tokens,
                "tokensPerSecond": round(rate, 1) if rate else None,
            }
