"""The OpenAI completions API on the wire: the request body, server-sent events, and the
parts of each event (text, finish reason, usage)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from companion.backends.base import BackendError, GenerationRequest
from companion.backends.openai_errors import Malformed, error_detail

MAX_STOP = 4  # OpenAI's limit; the engine finds its stop strings itself anyway
MAX_LINE_BYTES = 1 << 20
USAGE_OPTIONS = {"include_usage": True, "continuous_usage_stats": True}  # vLLM: usage per event


def payload(model: str, request: GenerationRequest, chat: bool, usage_options: bool
            ) -> dict[str, Any]:
    """The JSON body of a streamed (chat) completion."""
    body: dict[str, Any] = {"model": model}
    if chat:
        body["messages"] = request.messages
    else:
        body["prompt"] = request.prompt
    body.update(max_tokens=request.max_tokens, temperature=request.temperature, stream=True)
    if request.stop:
        body["stop"] = request.stop[:MAX_STOP]
    if usage_options:
        body["stream_options"] = USAGE_OPTIONS
    return body


def refuses_usage_options(detail: str) -> bool:
    """Whether a 400/422 explanation is about `stream_options` (an older or stricter server)."""
    return any(option in detail for option in ("stream_options", *USAGE_OPTIONS))


def sse_data(pieces: Iterable[bytes]) -> Iterator[str]:
    """The `data` of each server-sent event in a byte stream, as events complete (comment
    lines such as keep-alive pings and other fields are skipped)."""
    pending = bytearray()
    data: list[str] = []
    for piece in itertools.chain(pieces, [b"\n\n"]):  # the end completes a last event
        pending += piece
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            line = bytes(pending[start:end]).rstrip(b"\r")
            start = end + 1
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
            elif not line.startswith(b":"):
                field, _, value = line.partition(b":")
                if field == b"data":
                    data.append(value.removeprefix(b" ").decode("utf-8", errors="replace"))
        del pending[:start]
        if len(pending) > MAX_LINE_BYTES:
            raise Malformed("an event line of over 1 MB")


def parse_json(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        shown = data[:60] if isinstance(data, str) else data[:60].decode("utf-8", "replace")
        raise Malformed(f"not JSON: {shown!r}") from None


def event_parts(event: Any, chat: bool) -> tuple[str, str | None, dict[str, Any]]:
    """(text, finish reason, usage) of one streamed event or a whole non-streamed answer."""
    if not isinstance(event, dict):
        raise Malformed("an event that is not a JSON object")
    if event.get("error") or event.get("object") == "error":
        detail = error_detail(json.dumps(event).encode("utf-8"))
        raise BackendError(f"the server failed mid-answer: {detail}")
    usage = event.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    choices = event.get("choices") or []
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise Malformed("`choices` is not a list of objects")
    if not choices:
        return "", None, usage
    choice = choices[0]
    if chat:
        message = choice.get("delta") or choice.get("message") or {}
        text = message.get("content") if isinstance(message, dict) else None
    else:
        text = choice.get("text")
    if not isinstance(text, str | None):
        raise Malformed("the text of a choice is not a string")
    finish = choice.get("finish_reason")
    return text or "", finish if isinstance(finish, str) else None, usage


def count(usage: dict[str, Any], *keys: str) -> int:
    """An integer from the nested `usage` object (0 when absent)."""
    value: Any = usage
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
