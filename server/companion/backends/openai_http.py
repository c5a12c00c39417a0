"""The remote backend's HTTP: an httpx client that ignores the environment, and `Wire`,
which lets a cancel or a deadline drop a request's connection from any thread.

httpx waits on a socket without looking at our cancel flag, and a read that has timed out
cannot be resumed. So the flag's callback (and, for the deadline, a timer) shuts the
request's socket down: a read still waiting on a server that is queueing or prefilling
returns at once, and the server, seeing the connection close, stops generating. The socket
comes from httpcore's `trace` hook, called as each connection is made.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from typing import Any

import httpx

from companion.backends.base import BackendError, GenerationRequest
from companion.backends.openai_endpoint import Endpoint, is_loopback_address
from companion.backends.openai_errors import IdleTimeout, Malformed

CONNECT_TIMEOUT_S = 3.0
SEND_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 30.0  # longest silence between two reads (deadlines usually end it sooner)
MAX_BODY_BYTES = 4 << 20
_CONNECTED = ("connection.connect_tcp.complete", "connection.start_tls.complete")


def open_client(endpoint: Endpoint) -> httpx.Client:
    """A client for `endpoint`: no proxy variables, no .netrc, no redirects, one connection
    per request (`Connection: close`), and no header but those the request needs."""
    verify: ssl.SSLContext | bool = (ssl.create_default_context()  # honours SSL_CERT_FILE
                                     if endpoint.scheme == "https" else False)
    client = httpx.Client(
        trust_env=False,
        verify=verify,
        follow_redirects=False,
        timeout=httpx.Timeout(connect=CONNECT_TIMEOUT_S, read=IDLE_TIMEOUT_S,
                              write=SEND_TIMEOUT_S, pool=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"Connection": "close"},
    )
    for name in ("User-Agent", "Accept-Encoding"):  # nothing but the request itself
        del client.headers[name]
    return client


class Wire:
    """One request's connections (a retry makes a new one): drops the current one when
    `fire` is called, and checks that plain http really reaches this machine."""

    def __init__(self, endpoint: Endpoint, request: GenerationRequest | None = None) -> None:
        self.fired = threading.Event()  # a cancel or the deadline: the request is over
        self.received = 0  # bytes read on the current connection
        self._tls = endpoint.scheme == "https"
        self._host = endpoint.host
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._timer: threading.Timer | None = None
        if request is not None:
            request.cancel.on_cancel(self.fire)
            if request.deadline is not None:
                wait = max(0.0, request.deadline - time.monotonic())
                self._timer = threading.Timer(wait, self.fire)
                self._timer.daemon = True
                self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook (the request's `trace` extension)."""
        if event not in _CONNECTED:
            return
        stream = info["return_value"]
        sock: socket.socket = stream.get_extra_info("socket")
        if not self._tls:
            peer = str(sock.getpeername()[0])
            if not is_loopback_address(peer):
                sock.close()
                raise BackendError(f"{self._host} resolves to {peer}, not to this machine: "
                                   "plain http is only allowed on loopback")
        self.received = 0
        read = stream.read

        def counted(max_bytes: int, timeout: float | None = None) -> bytes:
            # Whether the server said anything tells "not HTTP" (an SSH port) from "closed
            # without answering": httpcore reports both as a disconnect.
            data: bytes = read(max_bytes, timeout)
            self.received += len(data)
            return data

        stream.read = counted
        with self._lock:
            self._socket = sock
            fired = self.fired.is_set()
        if fired:
            _shut_down(sock)

    def fire(self) -> None:
        with self._lock:
            self.fired.set()
            sock = self._socket
        if sock is not None:
            _shut_down(sock)

    def close(self) -> None:
        """The request is done: a later cancel touches nothing."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._socket = None


def _shut_down(sock: socket.socket) -> None:
    # shutdown(), not close(): it wakes a read blocked in another thread. The base class's
    # method, so that a TLS socket is shut at the TCP level (the reader sees an EOF).
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def plain_failure(error: httpx.HTTPError, wire: Wire) -> Exception:
    """httpx's error as what it means here: IdleTimeout, Malformed, a ConnectionError with
    a sentence, or the operating system's (or TLS's) own error."""
    if isinstance(error, httpx.ReadTimeout):
        return IdleTimeout(IDLE_TIMEOUT_S)
    if isinstance(error, httpx.RemoteProtocolError):
        text = str(error)
        if "without sending a response" in text:
            if wire.received:
                return Malformed("not an HTTP answer")
            return ConnectionError("the server closed the connection without answering")
        if "peer closed connection" in text:
            return ConnectionError("the server closed the connection mid-answer")
        return Malformed("a broken chunk header" if "chunk" in text else "not an HTTP answer")
    if isinstance(error, httpx.DecodingError):
        return Malformed(f"an undecodable body ({error})")
    cause: BaseException = error  # httpcore re-raises its own error `from None`
    while (earlier := cause.__cause__ or cause.__context__) is not None:
        cause = earlier
    if isinstance(cause, OSError):
        return cause
    if isinstance(error, httpx.TimeoutException):
        return TimeoutError(str(error))
    return ConnectionError(str(error) or type(error).__name__)


def read_limited(response: httpx.Response, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, or Malformed past `limit` bytes."""
    body = bytearray()
    for piece in response.iter_bytes():
        body += piece
        if len(body) > limit:
            raise Malformed(f"an answer of over {limit >> 20} MB")
    return bytes(body)


def retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
