"""Model health: failures, backoff before the next try, and a hung generation thread.

A failing model costs the user nothing but quality: while it is unhealthy, requests are
answered from templates; the next try waits 1, 2, 4 … 60 s after each consecutive failure;
a success clears the record; `companion/restart` starts afresh.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

MAX_BACKOFF_S = 60.0


@dataclass
class ModelHealth:
    """Consecutive failures of the loaded model and when to try it again."""

    failures: int = 0
    last_error: str = ""
    retry_at: float = 0.0
    hung: bool = False  # a generation never returned: the worker thread is lost
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def failed(self, error: str) -> float:
        """Record a failure; returns the seconds until the model is tried again."""
        with self._lock:
            self.failures += 1
            self.last_error = error
            backoff = min(MAX_BACKOFF_S, 2.0 ** (self.failures - 1))
            self.retry_at = time.monotonic() + backoff
            return backoff

    def succeeded(self) -> None:
        with self._lock:
            self.failures, self.last_error, self.retry_at = 0, "", 0.0

    def mark_hung(self, error: str) -> None:
        with self._lock:
            self.hung = True
            self.failures += 1
            self.last_error = error

    @property
    def degraded(self) -> bool:
        return self.hung or self.failures > 0

    def may_try(self) -> bool:
        """False while backing off, or for good once the worker is hung (until restart)."""
        return not self.hung and time.monotonic() >= self.retry_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "failures": self.failures,
            "lastError": self.last_error,
            "retryInS": round(max(0.0, self.retry_at - time.monotonic()), 1),
            "hung": self.hung,
        }
