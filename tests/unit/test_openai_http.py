"""The remote backend's HTTP pieces: a cancel drops the connection at once (timed against a
raw socket server), httpx's errors as the backend words them, and the retry pause."""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from companion.backends import openai_retry
from companion.backends.base import Chunk, GenerationRequest, ModelSpec
from companion.backends.openai import OpenAIBackend
from companion.backends.openai_endpoint import parse_endpoint
from companion.backends.openai_errors import HttpError, IdleTimeout, Malformed
from companion.backends.openai_http import Wire, open_client, plain_failure

ENDPOINT = parse_endpoint("http://127.0.0.1:8000/v1")


class SilentServer:
    """Answers GET /models, then, to a POST, the head of an event stream (and `events`
    events), and waits; records when it sees the client close the connection."""

    def __init__(self, events: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.events = events
        self.closed_at: list[float] = []
        self.streams = 0  # event streams started
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                if data.startswith(b"GET"):
                    body = json.dumps({"data": [{"id": "m"}]}).encode()
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                       b"Content-Length: %d\r\n\r\n" % len(body) + body)
                    continue
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
                for _ in range(self.events):
                    connection.sendall(b'data: {"choices": [{"text": "x"}]}\n\n')
                self.streams += 1
                while connection.recv(65536):
                    pass
                self.closed_at.append(time.perf_counter())


@pytest.mark.parametrize("events", [0, 3], ids=["server silent", "mid-stream"])
def test_a_cancel_closes_the_connection_within_50_ms(events: int) -> None:
    server = SilentServer(events)
    backend = OpenAIBackend(server.url)
    backend.load(ModelSpec(name="", path="", family="generic"))
    delays = []
    for _ in range(5):
        request = GenerationRequest(prompt="")
        seen = len(server.closed_at)
        chunks: list[Chunk] = []
        reader = threading.Thread(target=chunks.extend, args=(backend.stream(request),))
        reader.start()
        until = time.monotonic() + 10  # until the reader waits on the server
        while (server.streams == seen or len(chunks) < events) and time.monotonic() < until:
            time.sleep(0.001)
        time.sleep(0.02)
        cancelled = time.perf_counter()
        request.cancel.cancel()
        until = time.monotonic() + 10
        while len(server.closed_at) == seen and time.monotonic() < until:
            time.sleep(0.0005)
        assert len(server.closed_at) > seen, "the server never saw the client go"
        delays.append(server.closed_at[-1] - cancelled)
        reader.join(10)
        assert chunks[-1].finish_reason == "cancelled"
    server.listener.close()
    assert statistics.median(delays) < 0.05, delays


def test_a_wire_fired_before_the_connection_drops_it_as_it_connects() -> None:
    server = SilentServer(0)
    wire = Wire(parse_endpoint(server.url))
    wire.fire()
    with open_client(parse_endpoint(server.url)) as client, pytest.raises(httpx.HTTPError):
        client.post(server.url + "/completions", content=b"{}",
                    extensions={"trace": wire.trace})
    server.listener.close()


def test_the_client_ignores_the_environment_and_sends_no_extra_headers() -> None:
    with open_client(ENDPOINT) as client:
        assert not client.trust_env
        assert {name.lower() for name in client.headers} == {"accept", "connection"}
        assert client.headers["connection"] == "close"


@pytest.mark.parametrize("error, received, expected", [
    (httpx.ReadTimeout("timed out"), 0, IdleTimeout),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), 0,
     ConnectionError),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), 20,
     Malformed),
    (httpx.RemoteProtocolError("peer closed connection without sending complete message "
                               "body: incomplete chunked read"), 0, ConnectionError),
    (httpx.RemoteProtocolError("illegal chunk header"), 0, Malformed),
])
def test_plain_failure(error: httpx.HTTPError, received: int, expected: type) -> None:
    wire = Wire(ENDPOINT)
    wire.received = received
    assert type(plain_failure(error, wire)) is expected


def test_plain_failure_finds_the_operating_systems_error() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as refused:
            raise httpx.ConnectError("refused") from refused
    except httpx.ConnectError as error:
        assert isinstance(plain_failure(error, Wire(ENDPOINT)), ConnectionRefusedError)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(openai_retry, "FIRST_BACKOFF_S", 0.01)
    yield


def test_retry_pause(no_backoff: None) -> None:
    woken = threading.Event()
    busy = HttpError(503, "Service Unavailable", "", None)
    assert openai_retry.pause(1, busy, None, woken, str)
    assert not openai_retry.pause(openai_retry.TRIES, busy, None, woken, str)
    assert not openai_retry.pause(1, busy, time.monotonic(), woken, str)  # past the deadline
    woken.set()
    assert not openai_retry.pause(1, busy, None, woken, str)  # cancelled while waiting
    assert openai_retry.retryable(busy) and openai_retry.retryable(ConnectionResetError())
    assert not openai_retry.retryable(HttpError(400, "Bad Request", "", None))
    assert not openai_retry.retryable(Malformed("not JSON"))
