"""The remote OpenAI-compatible backend against a scripted HTTP server on 127.0.0.1:
retries, errors, cancellation (the server sees the disconnect), URL rules, key secrecy."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from companion.backends import openai, openai_retry
from companion.backends.base import (
    BackendError,
    Chunk,
    GenerationRequest,
    ModelSpec,
    close_stream,
)
from companion.backends.openai import OpenAIBackend, parse_endpoint, pick_model, sse_data

KEY = "sk-test-5ecret-Key-0123456789"
KEY_ENV = "COMPANION_UNIT_KEY"
SPEC = ModelSpec(name="", path="", family="generic", context_tokens=2048)

Answer = Callable[["Handler"], None]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeServer:
    """An OpenAI-compatible server whose answers each test scripts, path by path: a list
    of answers is used in order, its last one for every request after that."""

    httpd: ThreadingHTTPServer
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def script(self, path: str, *answers: Answer) -> None:
        self.answers[path] = list(answers)

    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    @property
    def fake(self) -> FakeServer:
        fake: FakeServer = self.server.fake  # type: ignore[attr-defined]
        return fake

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        path = self.path.removeprefix("/v1")
        self.fake.requests.append(Recorded(method, path, dict(self.headers.items()), body))
        self.close_connection = True
        queue = self.fake.answers.get(path) or [reply(404, {"detail": "Not Found"})]
        (queue.pop(0) if len(queue) > 1 else queue[0])(self)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def write(self, data: bytes) -> bool:
        """False (and the disconnect recorded) once the client has gone."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.fake.disconnected.set()
            return False
        return True


@pytest.fixture
def server() -> Iterator[FakeServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    fake = FakeServer(httpd)
    httpd.fake = fake  # type: ignore[attr-defined]
    fake.script("/models", models("model-a", "org/model-b"))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_retry, "FIRST_BACKOFF_S", 0.02)
    monkeypatch.setenv(KEY_ENV, KEY)


# -- scripted answers ----------------------------------------------------------------------


def reply(status: int, document: Any, headers: dict[str, str] | None = None) -> Answer:
    def answer(handler: Handler) -> None:
        body = json.dumps(document).encode()
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.write(body)

    return answer


def models(*ids: str) -> Answer:
    return reply(200, {"object": "list", "data": [{"id": i, "object": "model"} for i in ids]})


def event(text: str, finish: str | None = None, usage: dict[str, Any] | None = None,
          chat: bool = False) -> str:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["delta"] = {"content": text}
    else:
        choice["text"] = text
    return "data: " + json.dumps({"choices": [choice], "usage": usage}) + "\n\n"


def sse(*events: str, delay: float = 0.0, chunked: bool = False, done: bool = True,
        end_abruptly: bool = False) -> Answer:
    """An event stream, close-delimited (or chunked), one event every `delay` seconds."""

    def answer(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for item in [*events, *(["data: [DONE]\n\n"] if done else [])]:
            data = item.encode()
            frame = f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data
            if not handler.write(frame):
                return
            time.sleep(delay)
        if chunked and not end_abruptly:
            handler.write(b"0\r\n\r\n")

    return answer


def silent(seconds: float) -> Answer:
    """Headers, then only keep-alive comments: a server busy queueing or prefilling."""

    def answer(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        until = time.monotonic() + seconds
        while time.monotonic() < until and handler.write(b": ping\n\n"):
            time.sleep(0.05)

    return answer


def raw(data: bytes) -> Answer:
    def answer(handler: Handler) -> None:
        handler.write(data)

    return answer


def loaded(server: FakeServer, name: str = "", key_env: str = KEY_ENV) -> OpenAIBackend:
    backend = OpenAIBackend(server.url, key_env)
    backend.load(ModelSpec(name=name, path=server.url, family="generic", context_tokens=2048))
    return backend


def text_of(chunks: list[Chunk]) -> str:
    return "".join(chunk.text for chunk in chunks)


# -- URL rules -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/v1", "http://127.9.8.7/v1", "http://localhost:8000/v1",
    "http://LOCALHOST./v1", "http://[::1]:8000/v1", "https://gpu.example.com/v1",
    "https://10.1.2.3:8443/v1/",
])
def test_loopback_http_and_any_https_are_allowed(url: str) -> None:
    endpoint = parse_endpoint(url)
    assert endpoint.path == "/v1"
    assert endpoint.origin.startswith(url.split(":", 1)[0] + "://")


def test_the_origin_holds_no_path() -> None:
    assert parse_endpoint("https://gpu.example.com/team/v1").origin == "https://gpu.example.com:443"
    assert parse_endpoint("http://[::1]:8000/v1").origin == "http://[::1]:8000"


@pytest.mark.parametrize("url", [
    "http://10.0.0.5:8000/v1", "http://gpu.example.com/v1", "http://192.168.1.2/v1",
    "http://[::ffff:10.0.0.1]/v1", "http://localhost.example.com/v1",
])
def test_plain_http_to_another_machine_is_refused(url: str) -> None:
    with pytest.raises(BackendError, match="https"):
        parse_endpoint(url)


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/v1", "127.0.0.1:8000/v1", "", "https://gpu.example.com/v1?key=abc",
    "http://127.0.0.1:notaport/v1", "https://gpu.exämple.com/v1",
])
def test_malformed_endpoints_are_refused(url: str) -> None:
    with pytest.raises(BackendError, match=r"companion\.endpoint"):
        parse_endpoint(url)


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(BackendError, match="apiKeyEnv") as caught:
        parse_endpoint("https://team:hunter2pass@gpu.example.com/v1")
    assert "hunter2pass" not in str(caught.value)


def test_pick_model() -> None:
    served = ["Qwen/Qwen2.5-Coder-7B", "model-a"]
    assert pick_model("", served) == "Qwen/Qwen2.5-Coder-7B"
    assert pick_model("auto", served) == "Qwen/Qwen2.5-Coder-7B"
    assert pick_model("model-a", served) == "model-a"
    assert pick_model("MODEL-A", served) == "model-a"
    assert pick_model("qwen2.5-coder-7b", served) == "Qwen/Qwen2.5-Coder-7B"
    assert pick_model("other", served) is None


def test_sse_data_parsing() -> None:
    stream = [b": ping\n\ndata: {\"a\"", b": 1}\r\n\r\nevent: x\nid: 3\ndata: one\ndata: two\n\n",
              b"data:[DONE]"]
    assert list(sse_data(stream)) == ['{"a": 1}', "one\ntwo", "[DONE]"]


# -- load ----------------------------------------------------------------------------------


def test_load_picks_the_first_served_model_and_reports_no_secret(server: FakeServer) -> None:
    backend = loaded(server)
    info = backend.info()
    assert (info.name, info.model, info.memory_mb, info.context_tokens) == (
        "openai", "model-a", 0.0, 2048)
    assert info.device == server.url.removesuffix("/v1")
    assert server.requests[0].path == "/models"
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(backend) and KEY not in repr(info)
    assert loaded(server, "model-b").info().model == "org/model-b"


def test_an_unserved_model_names_the_served_ones(server: FakeServer) -> None:
    with pytest.raises(BackendError, match=r"'model-z' is not served .*model-a, org/model-b"):
        loaded(server, "model-z")


def test_no_api_at_the_path(server: FakeServer) -> None:
    server.script("/models", reply(404, {"detail": "Not Found"}))
    with pytest.raises(BackendError, match=r"404.*ends in /v1"):
        loaded(server)


def test_a_refused_key_names_its_variable_never_the_key(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script("/models", reply(401, {"error": {"message": f"bad key {KEY}"}}))
    with pytest.raises(BackendError, match=f"\\${KEY_ENV}") as caught:
        loaded(server)
    assert KEY not in str(caught.value) and KEY not in caplog.text


def test_a_key_that_is_required_but_not_configured(server: FakeServer) -> None:
    server.script("/models", reply(401, {"detail": "Invalid API key"}))
    with pytest.raises(BackendError, match=r"needs an API key.*apiKeyEnv"):
        loaded(server, key_env="")
    assert "Authorization" not in server.requests[0].headers


def test_a_missing_or_empty_key_variable(server: FakeServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(BackendError, match=f"\\${KEY_ENV}.*not set"):
        loaded(server)
    monkeypatch.setenv(KEY_ENV, "  ")
    with pytest.raises(BackendError, match=f"\\${KEY_ENV}.*empty"):
        loaded(server)
    assert server.requests == []  # nothing was sent without the key


def test_a_key_pasted_into_api_key_env_is_not_echoed(server: FakeServer) -> None:
    with pytest.raises(BackendError, match="NAME of an environment variable") as caught:
        loaded(server, key_env=KEY)
    assert KEY not in str(caught.value)


def test_a_dead_endpoint_fails_fast_with_a_clear_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(openai_retry, "FIRST_BACKOFF_S", 0.0)  # the backoff is tested elsewhere
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"connection refused.*3 tries"):
        OpenAIBackend(f"http://127.0.0.1:{port}/v1").load(SPEC)
    # Fast: three refused connections cost less than one connect timeout would.
    assert time.monotonic() - started < openai.CONNECT_TIMEOUT_S


def test_proxy_variables_are_not_honoured(server: FakeServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    assert loaded(server).info().model == "model-a"


# -- streaming -----------------------------------------------------------------------------


def test_a_completion_streams_with_usage_and_time_to_first_token(server: FakeServer) -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 1,
             "prompt_tokens_details": {"cached_tokens": 8}}
    server.script("/completions", sse(
        event("return", usage=usage), event(" n", usage={**usage, "completion_tokens": 3}),
        event("", "length"), chunked=True))
    backend = loaded(server)
    chunks = list(backend.stream(GenerationRequest(
        prompt="def f(n):\n    ", max_tokens=5, stop=["\n\n", "a", "b", "c", "d"])))
    assert text_of(chunks) == "return n"
    assert chunks[0].prompt_tokens == 12 and chunks[0].cached_tokens == 8
    assert chunks[0].prefill_ms is not None and chunks[0].prefill_ms > 0
    assert [c.tokens for c in chunks] == [1, 2, 0]
    assert chunks[-1].finish_reason == "length"
    sent = server.posts()[0]
    assert sent.path == "/completions"
    assert sent.body == {
        "model": "model-a", "prompt": "def f(n):\n    ", "max_tokens": 5, "temperature": 0.0,
        "stream": True, "stop": ["\n\n", "a", "b", "c"],
        "stream_options": {"include_usage": True, "continuous_usage_stats": True}}
    # Only the request itself: no user agent, no telemetry headers.
    assert {name.lower() for name in sent.headers} == {
        "host", "accept", "connection", "content-type", "content-length", "authorization"}


def test_chat_messages_go_to_chat_completions(server: FakeServer) -> None:
    server.script("/chat/completions", sse(
        'data: {"choices": [{"delta": {"role": "assistant"}, "finish_reason": null}]}\n\n',
        event("It adds", chat=True), event(" one.", chat=True), event("", "stop", chat=True)))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "f?"}]
    chunks = list(loaded(server).stream(GenerationRequest(prompt="ignored", messages=messages)))
    assert text_of(chunks) == "It adds one."
    assert chunks[-1].finish_reason == "stop"
    assert chunks[0].prefill_ms is not None and chunks[0].prompt_tokens == 0
    body = server.posts()[0].body
    assert server.posts()[0].path == "/chat/completions"
    assert body["messages"] == messages and "prompt" not in body


def test_a_server_that_ignores_stream_true(server: FakeServer) -> None:
    server.script("/completions", reply(200, {"choices": [{"text": "x = 1", "finish_reason":
                                                           "stop"}]}))
    chunks = list(loaded(server).stream(GenerationRequest(prompt="")))
    assert text_of(chunks) == "x = 1" and chunks[-1].finish_reason == "stop"


def test_a_server_that_refuses_stream_options_is_asked_without(server: FakeServer) -> None:
    server.script("/completions",
                  reply(400, {"error": {"message": "Unrecognized field: stream_options"}}),
                  sse(event("ok", "stop")))
    backend = loaded(server)
    assert text_of(list(backend.stream(GenerationRequest(prompt="")))) == "ok"
    assert "stream_options" not in server.posts()[1].body
    list(backend.stream(GenerationRequest(prompt="")))
    assert len(server.posts()) == 3  # remembered: no second refusal


# -- retries and errors --------------------------------------------------------------------


def test_5xx_is_retried_before_the_first_token(server: FakeServer) -> None:
    server.script("/completions", reply(500, {"error": {"message": "boom"}}),
                  reply(503, {}, {"Retry-After": "0"}), sse(event("fine", "stop")))
    assert text_of(list(loaded(server).stream(GenerationRequest(prompt="")))) == "fine"
    assert len(server.posts()) == 3


def test_retries_are_bounded(server: FakeServer) -> None:
    server.script("/completions", reply(503, {"error": {"message": "overloaded"}}))
    with pytest.raises(BackendError, match=r"503.*overloaded.*3 tries") as caught:
        list(loaded(server).stream(GenerationRequest(prompt="")))
    assert "\n" not in str(caught.value)
    assert len(server.posts()) == 3


def test_retries_stay_within_the_deadline(server: FakeServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A backoff (60 s) that would end past the deadline (30 s) is not waited at all.
    monkeypatch.setattr(openai_retry, "FIRST_BACKOFF_S", 60.0)
    server.script("/completions", reply(502, {}))
    backend = loaded(server)
    started = time.monotonic()
    with pytest.raises(BackendError, match="502"):
        list(backend.stream(GenerationRequest(prompt="", deadline=time.monotonic() + 30)))
    assert time.monotonic() - started < 30  # it gave up instead of sleeping
    assert len(server.posts()) == 1


def test_no_retry_once_tokens_were_given(server: FakeServer) -> None:
    server.script("/completions", sse(event("half"), chunked=True, done=False,
                                      end_abruptly=True))
    chunks: list[Chunk] = []
    with pytest.raises(BackendError, match="broke off"):
        chunks.extend(loaded(server).stream(GenerationRequest(prompt="")))
    assert text_of(chunks) == "half"
    assert len(server.posts()) == 1


def test_a_rejected_prompt_is_one_actionable_line(server: FakeServer) -> None:
    message = ("This model's maximum context length is 2048 tokens.\nHowever, you requested "
               "4000 tokens.")
    server.script("/completions", reply(400, {"error": {"message": message}}))
    with pytest.raises(BackendError, match=r"rejected the request .*400.*2048 tokens") as caught:
        list(loaded(server).stream(GenerationRequest(prompt="x" * 100)))
    assert "\n" not in str(caught.value)
    assert len(server.posts()) == 1


def test_a_model_gone_at_generation_time_lists_the_served_ones(server: FakeServer) -> None:
    backend = loaded(server)
    server.script("/models", models("model-c"))
    server.script("/completions",
                  reply(404, {"error": {"message": "The model `model-a` does not exist."}}))
    with pytest.raises(BackendError, match=r"'model-a' is not served .* model-c"):
        list(backend.stream(GenerationRequest(prompt="")))


@pytest.mark.parametrize("answer, reason", [
    (sse("data: {not json\n\n"), "malformed.*not JSON"),
    (sse('data: {"choices": "nope"}\n\n'), "malformed.*choices"),
    (sse('data: {"error": {"message": "CUDA out of memory"}}\n\n'), "mid-answer.*out of memory"),
    (raw(b"SSH-2.0-OpenSSH_9.6\r\n"), "malformed.*not an HTTP answer"),
])
def test_malformed_answers(server: FakeServer, answer: Answer, reason: str) -> None:
    server.script("/completions", answer)
    with pytest.raises(BackendError, match=reason):
        list(loaded(server).stream(GenerationRequest(prompt="")))
    assert len(server.posts()) == 1


# -- cancellation --------------------------------------------------------------------------


def test_cancelling_mid_stream_drops_the_connection(server: FakeServer) -> None:
    server.script("/completions", sse(*[event(f" t{i}") for i in range(100)], delay=0.05))
    request = GenerationRequest(prompt="", max_tokens=100)
    chunks: list[Chunk] = []
    for chunk in loaded(server).stream(request):
        chunks.append(chunk)
        if len(chunks) == 3:
            request.cancel.cancel()
    assert chunks[-1].finish_reason == "cancelled" and len(chunks) <= 5
    assert server.disconnected.wait(30), "the server never saw the client go"


def test_closing_the_stream_drops_the_connection(server: FakeServer) -> None:
    server.script("/completions", sse(*[event(f" t{i}") for i in range(100)], delay=0.05,
                                      chunked=True))
    stream = loaded(server).stream(GenerationRequest(prompt=""))
    assert next(stream).text == " t0"
    close_stream(stream)  # what the engine does once a suggestion is complete
    assert server.disconnected.wait(30)


def test_cancel_while_the_server_is_still_silent(server: FakeServer) -> None:
    server.script("/completions", silent(120))
    request = GenerationRequest(prompt="")
    backend = loaded(server)

    def cancel_once_asked() -> None:  # the server has the request and stays silent
        for _ in range(1000):
            if server.posts():
                break
            time.sleep(0.01)
        request.cancel.cancel()

    threading.Thread(target=cancel_once_asked, daemon=True).start()
    started = time.monotonic()
    chunks = list(backend.stream(request))
    # The cancel ended it, not the server's silence (120 s) or the idle timeout (30 s).
    assert time.monotonic() - started < openai.IDLE_TIMEOUT_S
    assert [(c.text, c.tokens, c.finish_reason) for c in chunks] == [("", 0, "cancelled")]
    assert server.disconnected.wait(30)


def test_the_deadline_ends_a_silent_wait(server: FakeServer) -> None:
    server.script("/completions", silent(120))
    backend = loaded(server)
    started = time.monotonic()
    chunks = list(backend.stream(GenerationRequest(prompt="", deadline=time.monotonic() + 0.2)))
    # Not before the deadline; long before the silence (120 s) or the idle timeout (30 s).
    assert 0.15 < time.monotonic() - started < openai.IDLE_TIMEOUT_S
    assert chunks[-1].finish_reason == "deadline"


# -- the key, everywhere -------------------------------------------------------------------


def test_the_key_never_shows(server: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {"error": {"message": f"upstream said: Authorization: Bearer {KEY}"}}
    server.script("/completions", reply(500, echo), reply(400, echo),
                  sse(f"data: {json.dumps({'error': {'message': KEY}})}\n\n"))
    backend = loaded(server)
    errors = []
    for _ in range(2):
        with pytest.raises(BackendError) as caught:
            list(backend.stream(GenerationRequest(prompt="")))
        errors.append(str(caught.value))
    assert "***" in errors[0]
    visible = " ".join([*errors, caplog.text, repr(backend), repr(backend.info())])
    assert KEY not in visible
    assert server.posts()[0].headers["Authorization"] == f"Bearer {KEY}"


# -- https ---------------------------------------------------------------------------------


@pytest.fixture
def tls_server(server: FakeServer, tmp_path: Path) -> Iterator[tuple[FakeServer, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    yield server, cert


def test_https_with_a_trusted_certificate(tls_server: tuple[FakeServer, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    server, cert = tls_server
    url = server.url.replace("http://", "https://")
    with pytest.raises(BackendError, match=r"not trusted.*SSL_CERT_FILE"):
        OpenAIBackend(url, KEY_ENV).load(SPEC)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server.script("/completions", sse(event("secure", "stop")))
    backend = OpenAIBackend(url, KEY_ENV)
    backend.load(SPEC)
    assert backend.info().device.startswith("https://127.0.0.1:")
    assert text_of(list(backend.stream(GenerationRequest(prompt="")))) == "secure"
