"""Backend "openai": a model on a remote OpenAI-compatible server (`vllm serve`, llama.cpp).

The scale-out path: every editor of a team points at one shared GPU server. Completions
stream from `{endpoint}/completions`, or `{endpoint}/chat/completions` when the request
carries chat messages (hover explanations), as server-sent events.

Standard library only, and an HTTP/1.1 client of its own, one socket per request
(`Connection: close`): reads wait in POLL_S slices and look at the cancel flag between
them, so a superseded request lets go of the server at once even while the server is
still queueing or prefilling; closing the socket is how an OpenAI-compatible server
learns to abort a generation. No proxy variables are honoured, and nothing but the
request itself is sent.

Rules: plain http only to this machine (loopback), https anywhere else. The API key is
read from the environment variable named by `companion.apiKeyEnv`, goes only into the
`Authorization` header, and never into a log line, an error message, `info()` or a repr.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import logging
import os
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from companion.backends.base import (
    BackendError,
    BackendInfo,
    Capabilities,
    Chunk,
    GenerationRequest,
    ModelSpec,
    stop_reason,
)
from companion.models.resolve import guess_family

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
SEND_TIMEOUT_S = 10.0
POLL_S = 0.05  # a waiting read looks at the cancel flag this often
IDLE_TIMEOUT_S = 30.0  # longest silence between two events (deadlines usually end it sooner)
TRIES = 3  # on 5xx, 429 and connection errors, before the first token only
FIRST_BACKOFF_S = 0.25  # doubled after each failed try
MAX_RETRY_AFTER_S = 2.0  # a server's Retry-After is honoured up to this
MAX_STOP = 4  # OpenAI's limit; the engine finds its stop strings itself anyway
MAX_LINE_BYTES = 1 << 20
MAX_BODY_BYTES = 4 << 20
USAGE_OPTIONS = {"include_usage": True, "continuous_usage_stats": True}  # vLLM: usage per event
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class _Stopped(Exception):
    """The request was cancelled, or ran past its deadline, while waiting on the server."""


class _Malformed(Exception):
    """The server's answer is not HTTP, SSE or OpenAI-shaped JSON."""


class _IdleTimeout(Exception):
    """Nothing came from the server for IDLE_TIMEOUT_S."""


class _HttpError(Exception):
    """An error status, with the server's one-line explanation."""

    def __init__(self, status: int, reason: str, detail: str, retry_after: float | None) -> None:
        super().__init__(f"{status} {reason}")
        self.status, self.reason, self.detail = status, reason, detail
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status == 429


class _Secret:
    """The API key: shows as *** in any repr, str or dump of the backend's attributes."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "***" if self._value else "''"

    __str__ = __repr__


# -- addresses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A checked endpoint URL, split up. `origin` is safe to show: no path, no secret."""

    scheme: str
    host: str
    port: int
    path: str  # "/v1", without the trailing slash

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def is_loopback_address(address: str) -> bool:
    """Whether an IP address (text) is this machine: 127.0.0.0/8, ::1, ::ffff:127.x."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_loopback_host(host: str) -> bool:
    return host.lower().rstrip(".") == "localhost" or is_loopback_address(host)


def parse_endpoint(url: str) -> Endpoint:
    """The endpoint, or BackendError: http only to loopback, https anywhere. The URL is
    never echoed whole (it might hold credentials)."""
    text = url.strip()
    if not text.isascii() or any(char.isspace() for char in text):
        raise BackendError("companion.endpoint must be a URL without spaces or non-ASCII "
                           "characters (use the punycode form of an international host)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise BackendError(f"companion.endpoint is not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendError("companion.endpoint must be an http(s) URL such as "
                           "http://127.0.0.1:8000/v1")
    if parts.username is not None or parts.password is not None:
        raise BackendError("companion.endpoint must not hold credentials: put the API key in an "
                           "environment variable and name that variable in companion.apiKeyEnv")
    if parts.query or parts.fragment:
        raise BackendError("companion.endpoint must not have a ?query or #fragment: give the "
                           "API's base URL, e.g. https://gpu.example.com/v1")
    host = parts.hostname
    if parts.scheme == "http" and not is_loopback_host(host):
        raise BackendError(
            f"plain http to {host} would send your code and API key unencrypted: use "
            f"https://{host}/…, or http only to this machine (127.0.0.1, ::1, localhost)"
        )
    default = 443 if parts.scheme == "https" else 80
    return Endpoint(parts.scheme, host, port or default, parts.path.rstrip("/"))


def read_api_key(variable: str) -> str:
    """The key held by environment variable `variable` ("" when none is configured)."""
    if not variable:
        return ""
    if not ENV_NAME.fullmatch(variable):  # not echoed: it may be the key itself, misplaced
        raise BackendError("companion.apiKeyEnv must be the NAME of an environment variable "
                           "(letters, digits and _) that holds the key, not the key itself")
    value = os.environ.get(variable)
    if value is None:
        raise BackendError(f"companion.apiKeyEnv names ${variable}, which is not set in the "
                           "environment the editor starts the server with")
    key = value.strip()
    if key.lower().startswith("bearer "):
        key = key[len("bearer ") :].strip()
    if not key:
        raise BackendError(f"${variable} (companion.apiKeyEnv) is empty")
    if not key.isascii() or not key.isprintable() or any(char.isspace() for char in key):
        raise BackendError(f"${variable} holds characters that cannot go in an HTTP header "
                           "(spaces, line breaks or non-ASCII)")
    return key


def pick_model(requested: str, served: list[str]) -> str | None:
    """The served model meant by `requested`: exact, then case-insensitive, then by its
    last path part; the first served one when nothing ("" or "auto") is requested."""
    wanted = requested.strip()
    if not wanted or wanted.lower() == "auto":
        return served[0] if served else None
    if wanted in served:
        return wanted
    lowered = wanted.lower()
    for candidates in (
        [model for model in served if model.lower() == lowered],
        [model for model in served
         if model.rsplit("/", 1)[-1].lower() == lowered.rsplit("/", 1)[-1]],
    ):
        if len(candidates) == 1:
            return candidates[0]
    return None


# -- wire formats --------------------------------------------------------------------------


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
            raise _Malformed("an event line of over 1 MB")


def error_detail(body: bytes) -> str:
    """A server's error body as one short line (OpenAI, vLLM and FastAPI shapes)."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", errors="replace")
        text = "" if text.lstrip().startswith("<") else text  # an HTML error page
    else:
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, dict):
            text = str(error.get("message") or error)
        elif isinstance(error, str):
            text = error
        elif isinstance(document, dict) and ("detail" in document or "message" in document):
            text = str(document.get("detail") or document.get("message"))
        else:
            text = str(document)
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:199] + "…"


def _event_parts(event: Any, chat: bool) -> tuple[str, str | None, dict[str, Any]]:
    """(text, finish reason, usage) of one streamed event or a whole non-streamed answer."""
    if not isinstance(event, dict):
        raise _Malformed("an event that is not a JSON object")
    if event.get("error") or event.get("object") == "error":
        detail = error_detail(json.dumps(event).encode("utf-8"))
        raise BackendError(f"the server failed mid-answer: {detail}")
    usage = event.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    choices = event.get("choices") or []
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise _Malformed("`choices` is not a list of objects")
    if not choices:
        return "", None, usage
    choice = choices[0]
    if chat:
        message = choice.get("delta") or choice.get("message") or {}
        text = message.get("content") if isinstance(message, dict) else None
    else:
        text = choice.get("text")
    if not isinstance(text, str | None):
        raise _Malformed("the text of a choice is not a string")
    finish = choice.get("finish_reason")
    return text or "", finish if isinstance(finish, str) else None, usage


def _count(usage: dict[str, Any], *keys: str) -> int:
    value: Any = usage
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- one HTTP exchange ---------------------------------------------------------------------


class _Connection:
    """One HTTP/1.1 exchange on a socket of its own (`Connection: close`).

    Reads wait in POLL_S slices and look at `should_stop` between them; `close()` drops
    the socket, which is what tells the server to stop generating."""

    def __init__(self, endpoint: Endpoint, tls: ssl.SSLContext | None,
                 should_stop: Callable[[], bool]) -> None:
        self.status, self.reason = 0, ""
        self.headers: dict[str, str] = {}
        self._should_stop = should_stop
        self._buffer = bytearray()
        sock = socket.create_connection((endpoint.host, endpoint.port), CONNECT_TIMEOUT_S)
        try:
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=endpoint.host)
            elif not is_loopback_address(str(sock.getpeername()[0])):
                raise BackendError(f"{endpoint.host} resolves to {sock.getpeername()[0]}, not to "
                                   "this machine: plain http is only allowed on loopback")
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def send(self, request_head: str, body: bytes) -> None:
        self._sock.settimeout(SEND_TIMEOUT_S)
        self._sock.sendall(request_head.encode("latin-1") + body)
        self._sock.settimeout(POLL_S)

    def _receive(self) -> bool:
        """Wait for more bytes (False at the end of the stream)."""
        waiting_since = time.monotonic()
        while True:
            if self._should_stop():
                raise _Stopped()
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                if time.monotonic() - waiting_since > IDLE_TIMEOUT_S:
                    raise _IdleTimeout() from None
                continue
            if not data:
                return False
            self._buffer += data
            return True

    def _line(self) -> bytes | None:
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > MAX_LINE_BYTES:
                raise _Malformed("a header line of over 1 MB")
            if not self._receive():
                end = len(self._buffer) - 1
                if end < 0:
                    return None
                break
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        return line

    def _take(self, count: int) -> bytes:
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def read_head(self) -> None:
        """The status line and headers (1xx interim answers skipped)."""
        while self.status < 200:
            line = self._line()
            if line is None:
                raise ConnectionError("the server closed the connection without answering")
            version, _, rest = line.decode("latin-1").strip().partition(" ")
            code, _, reason = rest.partition(" ")
            if not version.startswith("HTTP/") or not code.isdigit():
                raise _Malformed("not an HTTP answer")
            self.status, self.reason, self.headers = int(code), reason, {}
            while (line := self._line()) not in (b"\r\n", b"\n"):
                if line is None:
                    raise ConnectionError("the server closed the connection mid-answer")
                name, _, value = line.decode("latin-1").partition(":")
                self.headers[name.strip().lower()] = value.strip()

    def body(self) -> Iterator[bytes]:
        """The body as it arrives: chunked, sized, or up to the close."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while True:
                size_line = self._line()
                if size_line is None:
                    raise ConnectionError("the server closed the connection mid-answer")
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _Malformed("a broken chunk header") from None
                if size == 0:
                    return
                while len(self._buffer) < size + 2:
                    if not self._receive():
                        raise ConnectionError("the server closed the connection mid-answer")
                yield self._take(size)
                self._take(2)
        length = self.headers.get("content-length", "")
        remaining = int(length) if length.isdigit() else -1
        while remaining:
            if not self._buffer and not self._receive():
                if remaining > 0:
                    raise ConnectionError("the server closed the connection mid-answer")
                return
            piece = self._take(len(self._buffer) if remaining < 0 else remaining)
            remaining = remaining - len(piece) if remaining > 0 else remaining
            yield piece

    def read_body(self, limit: int = MAX_BODY_BYTES) -> bytes:
        body = bytearray()
        for piece in self.body():
            body += piece
            if len(body) > limit:
                raise _Malformed(f"an answer of over {limit >> 20} MB")
        return bytes(body)


def _retry_after(headers: dict[str, str]) -> float | None:
    try:
        return float(headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _never() -> bool:
    return False


# -- the backend ---------------------------------------------------------------------------


class OpenAIBackend:
    """A model served by an OpenAI-compatible server at `endpoint` (the URL ending in /v1)."""

    name = "openai"
    capabilities = Capabilities(local_prefix_cache=False, remote=True, in_host=False)

    def __init__(self, endpoint: str, api_key_env: str = "") -> None:
        self._url = endpoint
        self._key_env = api_key_env.strip()
        self._key = _Secret()
        self._endpoint: Endpoint | None = None
        self._tls: ssl.SSLContext | None = None
        self._spec: ModelSpec | None = None
        self._model = ""
        self._usage_options = True  # dropped for a server that refuses stream_options

    def __repr__(self) -> str:
        where = self._endpoint.origin if self._endpoint else "not loaded"
        key_from = f"${self._key_env}" if ENV_NAME.fullmatch(self._key_env) else "nowhere"
        return f"OpenAIBackend({where}, model={self._model!r}, key from {key_from})"

    # -- contract ---------------------------------------------------------------------------

    def load(self, model: ModelSpec) -> None:
        """Check the endpoint and key, ask GET /models, and pick the served model."""
        self.unload()
        endpoint = parse_endpoint(self._url or model.path)
        self._key = _Secret(read_api_key(self._key_env))
        self._endpoint = endpoint
        try:
            self._tls = ssl.create_default_context() if endpoint.scheme == "https" else None
            served = self._served_models()
            chosen = pick_model(model.name, served)
            if chosen is None:
                raise self._not_served(model.name, served)
        except BaseException:
            self.unload()
            raise
        self._model, self._spec = chosen, model
        log.info("openai: %s serves %s", endpoint.origin, chosen)

    def unload(self) -> None:
        self._key = _Secret()
        self._endpoint = self._tls = self._spec = None
        self._model = ""

    def info(self) -> BackendInfo:
        spec = self._spec
        return BackendInfo(
            name=self.name,
            model=self._model,
            device=self._endpoint.origin if self._endpoint else "",
            memory_mb=0.0,
            context_tokens=spec.context_tokens if spec else 0,
            fim=guess_family(self._model)[1] if self._model else False,
        )

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        """Stream the answer; retries (bounded, within the deadline) only before the first
        token, and drops the connection as soon as the request is cancelled."""
        if self._endpoint is None or not self._model:
            raise BackendError("no model loaded")
        chat = bool(request.messages)
        path = "/chat/completions" if chat else "/completions"
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            if request.should_stop():
                yield Chunk(text="", tokens=0, finish_reason=stop_reason(request))
                return
            connection: _Connection | None = None
            answered = stopped = False
            failure: Exception | None = None
            try:
                connection = self._exchange("POST", path, self._payload(request, chat),
                                            request.should_stop)
                for chunk in self._chunks(connection, request, chat, started):
                    answered = True
                    yield chunk
                return
            except _Stopped:
                stopped = True
            except _HttpError as error:
                if error.status in (400, 422) and self._usage_options and any(
                    option in error.detail for option in ("stream_options", *USAGE_OPTIONS)
                ):
                    self._usage_options = False  # an older or stricter server: ask without
                    attempt -= 1
                    continue
                if not error.retryable:
                    raise self._http_failure(error, path) from None
                failure = error
            except (OSError, _Malformed, _IdleTimeout) as error:
                if isinstance(error, ssl.SSLError | _Malformed | _IdleTimeout):
                    raise self._failure(error) from None
                failure = error
            except BackendError as error:  # the server's own words: one line, never the key
                raise self._error(str(error)) from None
            finally:
                if connection is not None:
                    connection.close()
            if stopped:
                yield Chunk(text="", tokens=0, finish_reason=stop_reason(request))
                return
            assert failure is not None
            if answered or not self._pause(attempt, failure, request):
                if request.should_stop():
                    yield Chunk(text="", tokens=0, finish_reason=stop_reason(request))
                    return
                raise self._failure(failure, attempt, mid_answer=answered) from None

    # -- requests ---------------------------------------------------------------------------

    def _exchange(self, method: str, path: str, payload: dict[str, Any] | None,
                  should_stop: Callable[[], bool]) -> _Connection:
        """Connect, send, and read the answer's head; an error status raises _HttpError."""
        assert self._endpoint is not None
        endpoint = self._endpoint
        body = json.dumps(payload).encode("utf-8") if payload is not None else b""
        lines = [f"{method} {endpoint.path}{path} HTTP/1.1", f"Host: {endpoint.host_header}",
                 "Accept: " + ("text/event-stream" if payload else "application/json"),
                 "Connection: close"]
        if payload is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        if self._key:
            lines.append(f"Authorization: Bearer {self._key.reveal()}")
        connection = _Connection(endpoint, self._tls, should_stop)
        try:
            connection.send("\r\n".join(lines) + "\r\n\r\n", body)
            connection.read_head()
            if connection.status >= 400:
                detail = error_detail(connection.read_body(1 << 16))
                raise _HttpError(connection.status, connection.reason, detail,
                                 _retry_after(connection.headers))
        except BaseException:
            connection.close()
            raise
        return connection

    def _payload(self, request: GenerationRequest, chat: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self._model}
        if chat:
            payload["messages"] = request.messages
        else:
            payload["prompt"] = request.prompt
        payload.update(max_tokens=request.max_tokens, temperature=request.temperature,
                       stream=True)
        if request.stop:
            payload["stop"] = request.stop[:MAX_STOP]
        if self._usage_options:
            payload["stream_options"] = USAGE_OPTIONS
        return payload

    def _chunks(self, connection: _Connection, request: GenerationRequest, chat: bool,
                started: float) -> Iterator[Chunk]:
        """Chunks from the answer's events; the first carries prompt tokens and the time to
        the first token."""
        first = True
        counted = 0

        def chunk(text: str, finish: str | None, usage: dict[str, Any]) -> Chunk:
            nonlocal first, counted
            total = _count(usage, "completion_tokens")
            tokens = (total - counted if total else int(bool(text))) if text else 0
            counted = max(counted, total)
            made = Chunk(text=text, tokens=max(0, tokens), finish_reason=finish)
            if first:
                made.prompt_tokens = _count(usage, "prompt_tokens")
                made.cached_tokens = _count(usage, "prompt_tokens_details", "cached_tokens")
                made.prefill_ms = (time.perf_counter() - started) * 1000
                first = False
            return made

        if "text/event-stream" not in connection.headers.get("content-type", ""):
            # A server that ignored "stream": true sends the whole answer at once.
            text, finish, usage = _event_parts(self._json(connection.read_body()), chat)
            yield chunk(text, "length" if finish == "length" else "stop", usage)
            return
        events = 0
        for data in sse_data(connection.body()):
            events += 1
            if request.should_stop():
                raise _Stopped()
            if data.strip() == "[DONE]":
                break
            text, finish, usage = _event_parts(self._json(data), chat)
            if finish is not None:
                yield chunk(text, "length" if finish == "length" else "stop", usage)
                return
            if text:
                yield chunk(text, None, usage)
        if not events:
            raise ConnectionError("the server ended the stream without an answer")
        yield chunk("", "stop", {})

    @staticmethod
    def _json(data: str | bytes) -> Any:
        try:
            return json.loads(data)
        except ValueError:
            shown = data[:60] if isinstance(data, str) else data[:60].decode("utf-8", "replace")
            raise _Malformed(f"not JSON: {shown!r}") from None

    def _served_models(self) -> list[str]:
        """The ids GET /models lists (retried like a generation, without a deadline)."""
        assert self._endpoint is not None
        attempt = 0
        while True:
            attempt += 1
            try:
                connection = self._exchange("GET", "/models", None, _never)
                try:
                    document = self._json(connection.read_body())
                finally:
                    connection.close()
                break
            except _HttpError as error:
                if not error.retryable or not self._pause(attempt, error, None):
                    raise self._http_failure(error, "/models") from None
            except (OSError, _Malformed, _IdleTimeout) as error:
                if isinstance(error, ssl.SSLError | _Malformed | _IdleTimeout) or not self._pause(
                    attempt, error, None
                ):
                    raise self._failure(error, attempt) from None
        data = document.get("data") if isinstance(document, dict) else None
        if not isinstance(data, list):
            raise self._error(f"{self._where('/models')} did not answer with a model list: is "
                              "it an OpenAI-compatible API (the endpoint usually ends in /v1)?")
        served = [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]
        if not served:
            raise self._error(f"{self._endpoint.origin} serves no model")
        return served

    def _pause(self, attempt: int, error: Exception, request: GenerationRequest | None) -> bool:
        """Wait before the next try; False when the tries, the time or the request is up."""
        if attempt >= TRIES:
            return False
        delay = FIRST_BACKOFF_S * 2 ** (attempt - 1)
        if isinstance(error, _HttpError) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER_S))
        until = time.monotonic() + delay
        if request is not None and request.deadline is not None and until >= request.deadline:
            return False
        log.warning("openai: %s (try %d of %d); trying again in %.2f s",
                    self._redact(self._describe(error)), attempt, TRIES, delay)
        while (left := until - time.monotonic()) > 0:
            if request is not None and request.should_stop():
                return False
            time.sleep(min(POLL_S, left))
        return True

    # -- errors: one line each, never the key ------------------------------------------------

    def _redact(self, text: str) -> str:
        return text.replace(self._key.reveal(), "***") if self._key else text

    def _error(self, message: str) -> BackendError:
        return BackendError(self._redact(" ".join(message.split())))

    def _where(self, path: str = "") -> str:
        assert self._endpoint is not None
        return f"{self._endpoint.origin}{self._endpoint.path}{path}"

    def _describe(self, error: Exception) -> str:
        origin = self._endpoint.origin if self._endpoint else "the server"
        if isinstance(error, _HttpError):
            detail = f": {error.detail}" if error.detail else ""
            return f"{origin} answered {error.status} {error.reason}{detail}"
        if isinstance(error, ConnectionRefusedError):
            return f"cannot reach {origin}: connection refused (is the server running?)"
        if isinstance(error, socket.gaierror):
            return f"cannot reach {origin}: the host name does not resolve"
        if isinstance(error, TimeoutError):
            return f"cannot reach {origin}: no answer within {CONNECT_TIMEOUT_S:.0f} s"
        if isinstance(error, ConnectionError) and error.args and isinstance(error.args[0], str):
            return f"{origin}: {error.args[0]}"
        if isinstance(error, OSError):
            return f"cannot reach {origin}: {error.strerror or error}"
        return f"{origin}: {error}"

    def _failure(self, error: Exception, attempts: int = 1, mid_answer: bool = False
                 ) -> BackendError:
        origin = self._endpoint.origin if self._endpoint else "the server"
        if isinstance(error, ssl.SSLCertVerificationError):
            return self._error(f"the TLS certificate of {origin} is not trusted "
                               f"({error.verify_message}); if your team uses its own CA, "
                               "point SSL_CERT_FILE at its certificate")
        if isinstance(error, ssl.SSLError):
            return self._error(f"the TLS handshake with {origin} failed ({error.reason}): does "
                               "it really serve https on that port?")
        if isinstance(error, _Malformed):
            return self._error(f"{origin} sent a malformed answer ({error}): is it an "
                               "OpenAI-compatible server?")
        if isinstance(error, _IdleTimeout):
            return self._error(f"{origin} sent nothing for {IDLE_TIMEOUT_S:.0f} s")
        text = self._describe(error)
        if mid_answer:
            text = f"the answer broke off: {text}"
        elif attempts > 1:
            text += f" ({attempts} tries)"
        return self._error(text)

    def _http_failure(self, error: _HttpError, path: str) -> BackendError:
        where = self._where(path)
        detail = f": {error.detail}" if error.detail else ""
        if error.status in (401, 403):
            if not self._key_env:
                return self._error(f"{where} answered {error.status}: it needs an API key; put "
                                   "it in an environment variable and name that variable in "
                                   "companion.apiKeyEnv")
            return self._error(f"{where} refused the API key read from ${self._key_env} "
                               f"({error.status} {error.reason}): check that variable in the "
                               "environment the editor starts the server with")
        mentions_model = "model" in error.detail.lower()
        if path != "/models" and (error.status == 404 or (error.status == 400 and mentions_model
                                  and ("exist" in error.detail or "found" in error.detail))):
            if error.status == 404 and not mentions_model:
                return self._error(f"{where} answered 404 Not Found{detail}")
            try:
                served = self._served_models()
            except BackendError:
                served = []
            return self._not_served(self._model, served)
        if error.status == 404:
            return self._error(f"{where} answered 404: no OpenAI-compatible API there (the "
                               "endpoint usually ends in /v1)")
        if error.status == 429:
            return self._error(f"{where} is rate limiting (429){detail}: try again shortly")
        if error.status >= 500:
            return self._error(f"{where} answered {error.status} {error.reason}{detail}")
        return self._error(f"{where} rejected the request ({error.status} {error.reason})"
                           f"{detail}")

    def _not_served(self, requested: str, served: list[str]) -> BackendError:
        origin = self._endpoint.origin if self._endpoint else "the server"
        listed = ", ".join(served[:8]) + (f" and {len(served) - 8} more" if len(served) > 8
                                          else "")
        return self._error(f"model {requested!r} is not served by {origin}; it serves: "
                           f"{listed or 'nothing it would list'} (set companion.model to one "
                           "of them, or leave it empty for the first)")
