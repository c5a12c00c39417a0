"""When the remote backend tries again: on 5xx, 429 and connection errors, before the first
token only, a bounded number of times, with a doubling backoff that stays within the
request's deadline and honours a server's Retry-After up to a cap."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from companion.backends.openai_errors import HttpError, is_final

log = logging.getLogger("companion.backends.openai")

TRIES = 3
FIRST_BACKOFF_S = 0.25  # doubled after each failed try
MAX_RETRY_AFTER_S = 2.0  # a server's Retry-After is honoured up to this


def retryable(error: Exception) -> bool:
    """Whether another try might succeed (a TLS failure or a malformed answer will not)."""
    if isinstance(error, HttpError):
        return error.retryable
    return isinstance(error, OSError) and not is_final(error)


def pause(attempt: int, error: Exception, deadline: float | None, woken: threading.Event,
          describe: Callable[[Exception], str]) -> bool:
    """Wait before try `attempt + 1`; False when the tries or the time are up, or `woken`
    is set (the request was cancelled) during the wait."""
    if attempt >= TRIES:
        return False
    delay = FIRST_BACKOFF_S * 2 ** (attempt - 1)
    if isinstance(error, HttpError) and error.retry_after is not None:
        delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER_S))
    if deadline is not None and time.monotonic() + delay >= deadline:
        return False
    log.warning("openai: %s (try %d of %d); trying again in %.2f s",
                describe(error), attempt, TRIES, delay)
    return not woken.wait(delay)
