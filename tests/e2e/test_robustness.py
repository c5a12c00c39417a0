"""Bad input gets an answer and the server keeps serving."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import Future
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import LanguageClient

from companion.lspclient import plain
from tests.e2e.conftest import inline, open_document, status


async def test_unknown_document_gets_an_empty_answer(client: LanguageClient) -> None:
    items = await inline(client, "file:///nowhere/never_opened.py",
                         types.Position(line=0, character=0))
    assert items == []
    assert any("not open" in m.message for m in client.log_messages)


async def test_position_past_the_end_gets_an_empty_answer(client: LanguageClient) -> None:
    uri = open_document(client, "x = 1\n", "short.py")
    before = await status(client)
    assert await inline(client, uri, types.Position(line=40, character=0)) == []
    warnings = [m.message for m in client.log_messages if "short.py" in m.message]
    assert len(warnings) == 1 and "40:0 outside" in warnings[0], warnings
    # A character past the line end means the line end (LSP): that is a valid request,
    # served like any other: no warning, and it is timed as an answered request.
    served = (await status(client))["latencyByKind"].get("inline", {}).get("count", 0)
    await inline(client, uri, types.Position(line=0, character=500))
    assert [m.message for m in client.log_messages if "short.py" in m.message] == warnings
    current = await status(client)
    assert current["latencyByKind"]["inline"]["count"] == served + 1
    assert current["requests"].get("errors", 0) == before["requests"].get("errors", 0)


def send_raw(client: LanguageClient, method: str, params: Any) -> asyncio.Future[Any]:
    """Send a request exactly as given (the client's own types would refuse it)."""
    msg_id = f"raw-{uuid.uuid4().hex}"
    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    data = body.encode("utf-8")
    writer: Any = client.protocol.writer
    writer.write(f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return asyncio.wrap_future(future)


async def test_malformed_params_get_invalid_params(client: LanguageClient) -> None:
    future = send_raw(
        client,
        types.TEXT_DOCUMENT_INLINE_COMPLETION,
        {"textDocument": {"uri": "file:///x.py"}, "position": {"line": -1, "character": 0},
         "context": {"triggerKind": 1}},
    )
    with pytest.raises(JsonRpcInvalidParams):
        await asyncio.wait_for(future, timeout=10)
    with pytest.raises(JsonRpcInvalidParams):
        await asyncio.wait_for(send_raw(client, types.TEXT_DOCUMENT_COMPLETION, 17), timeout=10)
    assert (await status(client))["state"] == "ready"  # still serving


async def test_binary_document_is_refused_politely(client: LanguageClient) -> None:
    uri = open_document(client, "abc\x00\x01\x02" * 10, "binary.py")
    assert await inline(client, uri, types.Position(line=0, character=3)) == []
    assert (await status(client))["state"] == "ready"


async def test_a_request_without_params_is_answered(client: LanguageClient) -> None:
    msg_id = f"raw-{uuid.uuid4().hex}"
    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    data = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "companion/status"}).encode()
    writer: Any = client.protocol.writer
    writer.write(f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    result = plain(await asyncio.wait_for(asyncio.wrap_future(future), timeout=10))
    # companion/status needs no params: the answer is the status itself, not an error.
    assert result["state"] == "ready" and result["inFlight"] == 0, result


async def test_a_document_with_one_2mb_line_is_served(client: LanguageClient) -> None:
    text = "data = '" + "x" * 2_000_000 + "'\nvalue = "
    uri = open_document(client, text, "huge_line.py")
    before = await status(client)
    await asyncio.wait_for(inline(client, uri, types.Position(line=1, character=8)),
                           timeout=120)
    current = await status(client)
    # Answered through the engine (timed as a served request), not refused or failed.
    assert (current["latencyByKind"]["inline"]["count"]
            == before["latencyByKind"].get("inline", {}).get("count", 0) + 1)
    # Hover on the huge line: answered in bounded time (no hover is an answer), and never
    # a copy of the 2 MB line.
    hover = await asyncio.wait_for(client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=0, character=1))), timeout=60)
    if hover is not None:
        assert isinstance(hover.contents, types.MarkupContent)
        assert len(hover.contents.value) < 100_000
    current = await status(client)
    assert current["state"] == "ready"
    assert current["requests"].get("errors", 0) == before["requests"].get("errors", 0)


async def test_the_server_opens_no_socket(client: LanguageClient) -> None:
    """No remote endpoint configured: no network connection, no listening socket."""
    import psutil

    server = client._server
    assert server is not None
    process = psutil.Process(server.pid)
    uri = open_document(client, "import os\n\ndef f():\n    ", "sockets.py")
    await inline(client, uri, types.Position(line=3, character=4))
    assert process.net_connections(kind="inet") == []
