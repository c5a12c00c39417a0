"""Model health: failures, backoff before the next try, a hung generation thread, and the
ok / slow / degraded verdict of companion/status.

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


# -- the verdict companion/status shows ----------------------------------------------------

SLOW_MIN_SAMPLES = 5  # fewer inline latencies than this say nothing about p95
DEGRADED_MODEL_ERRORS = 3  # model errors in one session
DEGRADED_LOAD_FAILURES = 2  # model loads that ended on templates, or crashed, in one session
OK, SLOW, DEGRADED = "ok", "slow", "degraded"


def verdict(
    *,
    state: str,
    configured_backend: str,
    inline_p95_ms: float | None,
    inline_samples: int,
    inline_deadline_ms: int,
    model_errors: int,
    hung: bool,
    failing: bool,
    load_failures: int,
) -> dict[str, Any]:
    """ok / slow / degraded, the reasons, and the thresholds they were judged by.

    degraded: the model hung or is failing now, the ladder stepped down to templates or a
    smaller model than configured, or errors and failed loads repeated this session.
    slow: the inline p95 (over at least SLOW_MIN_SAMPLES requests) is past the deadline."""
    degraded: list[str] = []
    if hung:
        degraded.append("the model hung: templates answer until companion/restart")
    elif failing:
        degraded.append("the model is failing: templates answer while it backs off")
    if configured_backend != "templates":
        if state == "templates":
            degraded.append("no model is loaded: templates answer")
        elif state == "degraded" and not (hung or failing):
            degraded.append("a fallback model runs instead of the configured one")
    if model_errors >= DEGRADED_MODEL_ERRORS:
        degraded.append(f"{model_errors} model errors this session")
    if load_failures >= DEGRADED_LOAD_FAILURES:
        degraded.append(f"{load_failures} failed model loads this session")
    slow: list[str] = []
    if (inline_p95_ms is not None and inline_samples >= SLOW_MIN_SAMPLES
            and inline_p95_ms > inline_deadline_ms):
        slow.append(f"inline p95 {inline_p95_ms:.0f} ms is over the "
                    f"{inline_deadline_ms} ms deadline")
    level = DEGRADED if degraded else SLOW if slow else OK
    return {
        "level": level,
        "reasons": degraded + slow,
        "thresholds": {
            "slowP95Ms": inline_deadline_ms,
            "slowMinSamples": SLOW_MIN_SAMPLES,
            "degradedModelErrors": DEGRADED_MODEL_ERRORS,
            "degradedLoadFailures": DEGRADED_LOAD_FAILURES,
        },
    }


def template_reason(state: str, reason: str, model_loaded: bool, health: ModelHealth) -> str:
    """Why templates answered a request: no model (and why), or the model's trouble."""
    if not model_loaded:
        return "model loading" if state == "loading" else reason or "no model loaded"
    if health.hung:
        return f"model hung: {health.last_error}"
    if health.failures:
        return f"model error: {health.last_error}"
    return "templates"
