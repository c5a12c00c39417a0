"""Property-based fuzzing of the real server over stdio: random documents, edits,
positions, params and malformed frames. Every request must be answered (a result or a
JSON-RPC error) and the server must stay alive.

COMPANION_FUZZ_REQUESTS (default 2000) sets how many requests the templates-backend run
sends at least; COMPANION_FUZZ_MODEL_REQUESTS (default 120) the run with the real model.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.rawclient import RawClient

T = TypeVar("T")
REQUESTS = int(os.environ.get("COMPANION_FUZZ_REQUESTS", "2000"))
MODEL_REQUESTS = int(os.environ.get("COMPANION_FUZZ_MODEL_REQUESTS", "120"))
ANSWER_TIMEOUT_S = 60

METHODS = ["textDocument/inlineCompletion", "textDocument/completion", "textDocument/hover",
           "textDocument/codeAction", "companion/status", "workspace/executeCommand"]
URIS = ["file:///tmp/fuzz/a.py", "file:///tmp/fuzz/b.py", "untitled:Untitled-1",
        "file:///tmp/never/opened.py"]
SNIPPETS = [
    "def f(x):\n    return x\n", "class A:\n    def __init__(self, a):\n        ", "",
    "import os\n\nif __na", "x = [1, 2,\n", "print('😀😀')\r\nvalue = 1\r\n", "\x00\x01binary",
    "a" * 3000, "def g(\n", "\t\tif True:\n\t\t\tpass\n", "ü" * 40 + "\n" * 30,
]

texts = st.one_of(st.sampled_from(SNIPPETS),
                  st.text(st.characters(blacklist_categories=("Cs",)), max_size=120))
positions = st.fixed_dictionaries({"line": st.integers(-2, 40), "character": st.integers(-2, 200)})
junk = st.one_of(st.integers(), st.text(max_size=8), st.none(), st.booleans(),
                 st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.sampled_from(["textDocument", "position", "range", "x"]),
                                 st.one_of(st.integers(), st.text(max_size=4)), max_size=3))
operations = st.one_of(
    st.tuples(st.just("open"), st.sampled_from(URIS), texts),
    st.tuples(st.just("change"), st.sampled_from(URIS), positions, positions, texts),
    st.tuples(st.just("close"), st.sampled_from(URIS)),
    st.tuples(st.just("ask"), st.sampled_from(METHODS[:4]), st.sampled_from(URIS), positions),
    st.tuples(st.just("ask-and-cancel"), st.sampled_from(METHODS[:2]), st.sampled_from(URIS),
              positions),
    st.tuples(st.just("junk"), st.sampled_from(METHODS), junk),
    st.tuples(st.just("no-params"), st.sampled_from(METHODS)),
    st.tuples(st.just("bad-frame"), st.sampled_from([b"{not json", b"[]", b'{"jsonrpc": "1"}'])),
)


def params_for(method: str, uri: str, position: dict[str, int]) -> dict[str, Any]:
    document = {"uri": uri}
    if method == "textDocument/inlineCompletion":
        return {"textDocument": document, "position": position, "context": {"triggerKind": 2}}
    if method == "textDocument/codeAction":
        return {"textDocument": document, "range": {"start": position, "end": position},
                "context": {"diagnostics": []}}
    return {"textDocument": document, "position": position}


class Session:
    """A RawClient on an event loop of its own thread, so hypothesis can drive it."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = RawClient()
        self.requests = 0
        self.versions: dict[str, int] = {}
        self.run(self.client.start(settings))

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def apply(self, operation: tuple[Any, ...]) -> None:
        client = self.client
        kind = operation[0]
        if kind == "open":
            _, uri, text = operation
            self.versions[uri] = 1
            client.notify("textDocument/didOpen", {"textDocument": {
                "uri": uri, "languageId": "python", "version": 1, "text": text}})
        elif kind == "change":
            _, uri, start, end, text = operation
            self.versions[uri] = self.versions.get(uri, 0) + 1
            client.notify("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": self.versions[uri]},
                "contentChanges": [{"range": {"start": start, "end": end}, "text": text}]})
        elif kind == "close":
            client.notify("textDocument/didClose", {"textDocument": {"uri": operation[1]}})
        elif kind == "bad-frame":
            client.write_bytes(operation[1])
            client.write_bytes(b"", header=b"X-Garbage: 1\r\n")
        else:
            if kind in ("ask", "ask-and-cancel"):
                _, method, uri, position = operation
                msg_id, future = client.send(method, params_for(method, uri, position))
                if kind == "ask-and-cancel":
                    client.cancel(msg_id)
            elif kind == "junk":
                _, future = client.send(operation[1], operation[2])
            else:
                _, future = client.send(operation[1], with_params=False)
            answer = await asyncio.wait_for(future, ANSWER_TIMEOUT_S)
            assert "result" in answer or "error" in answer, answer
            self.requests += 1

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def _fuzz(session: Session, operations_list: list[tuple[Any, ...]]) -> None:
    async def body() -> None:
        for operation in operations_list:
            await session.apply(operation)
        status = await session.client.request("companion/status", {}, timeout=ANSWER_TIMEOUT_S)
        assert "result" in status
    session.run(body(), timeout=600)
    assert session.client.alive


@pytest.fixture(scope="module")
def templates_session() -> Iterator[Session]:
    session = Session({"backend": "templates"})
    yield session
    session.close()


@pytest.fixture(scope="module")
def model_session() -> Iterator[Session]:
    session = Session({"maxTokens": 8})
    yield session
    session.close()


@settings(max_examples=max(1, REQUESTS // 6), deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.lists(operations, min_size=10, max_size=20))
def test_fuzz_templates_backend(templates_session: Session,
                                operations_list: list[tuple[Any, ...]]) -> None:
    _fuzz(templates_session, operations_list)


def test_fuzz_templates_backend_volume(templates_session: Session) -> None:
    """The property above ran after this module's fixture started: count what it sent."""
    assert templates_session.requests >= REQUESTS, templates_session.requests
    assert templates_session.client.alive


@pytest.mark.slow
@settings(max_examples=max(1, MODEL_REQUESTS // 8), deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.lists(operations, min_size=10, max_size=20))
def test_fuzz_with_the_real_model(model_session: Session,
                                  operations_list: list[tuple[Any, ...]]) -> None:
    _fuzz(model_session, operations_list)
