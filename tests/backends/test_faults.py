"""Model faults: each request still gets an answer (templates), status says degraded,
the model is retried with backoff, and companion/restart reloads it.

The faults are injected by a test-only wrapper around the real llama.cpp backend
(COMPANION_TEST_FAULT, see companion/backends/faulty.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pytest_lsp import LanguageClient

from tests.e2e.conftest import cursor_of, inline, insert_text, open_document, status

MakeClient = Callable[..., Awaitable[LanguageClient]]
SOURCE = "class Point:\n    def __init__(self, x, y):\n        █\n"


async def test_load_failure_falls_back_to_templates(make_client: MakeClient) -> None:
    client = await make_client({}, env={"COMPANION_TEST_FAULT": "load"})
    current = await status(client)
    assert current["backend"] == "templates"
    assert any("failed to load" in step for step in current["steps"])
    text, position = cursor_of(SOURCE)
    items = await inline(client, open_document(client, text, "load_fault.py"), position)
    assert [insert_text(item) for item in items] == ["self.x = x\n        self.y = y"]


async def test_errors_mid_generation_answer_from_templates_then_recover(
    make_client: MakeClient,
) -> None:
    client = await make_client({}, env={"COMPANION_TEST_FAULT": "raise:1"})
    text, position = cursor_of(SOURCE)
    uri = open_document(client, text, "raise_fault.py")
    await asyncio.sleep(0.5)  # let the warm-up (which does not count as a fault) finish
    items = await inline(client, uri, position)
    assert [insert_text(item) for item in items] == ["self.x = x\n        self.y = y"]
    current = await status(client)
    assert current["state"] == "degraded"
    assert current["health"]["failures"] == 1
    assert "injected fault" in current["health"]["lastError"]
    await asyncio.sleep(current["health"]["retryInS"] + 0.2)  # back off, then retry
    await inline(client, uri, position)
    current = await status(client)
    assert current["state"] == "ready", current["health"]
    assert current["requests"]["modelErrors"] == 1


async def test_out_of_memory_is_survived(make_client: MakeClient) -> None:
    client = await make_client({}, env={"COMPANION_TEST_FAULT": "oom"})
    text, position = cursor_of(SOURCE)
    uri = open_document(client, text, "oom_fault.py")
    await asyncio.sleep(0.5)
    for _ in range(3):
        items = await inline(client, uri, position)
        assert items, "templates answer while the model is failing"
    current = await status(client)
    assert current["state"] == "degraded"
    assert "MemoryError" in current["health"]["lastError"]
    assert current["health"]["failures"] == 1  # backing off: not retried at once


async def test_a_hung_generation_kills_and_restarts_the_host(make_client: MakeClient) -> None:
    """A generation that never returns (a native call stuck inside the engine) is not
    left holding the model: the host is killed and restarted, the request gets its answer
    from templates, and the model serves again without companion/restart."""
    client = await make_client(
        {}, env={"COMPANION_TEST_FAULT": "hang:1", "COMPANION_HANG_TIMEOUT_S": "8",
                 "COMPANION_HOST_BACKOFF_S": "0.2"}
    )
    text, position = cursor_of(SOURCE)
    uri = open_document(client, text, "hang_fault.py")
    first_host = (await status(client))["host"]["pid"]
    items = await asyncio.wait_for(inline(client, uri, position), timeout=30)
    assert [insert_text(item) for item in items] == ["self.x = x\n        self.y = y"]
    current = await status(client)
    assert "engine hung" in current["host"]["lastCrash"], current["host"]
    for _ in range(300):
        current = await status(client)
        if current["state"] in ("ready", "degraded") and current["host"]["pid"]:
            break
        await asyncio.sleep(0.1)
    assert current["host"]["pid"] not in (None, first_host), current["host"]
    assert current["health"]["hung"] is False
    before = current["generatedTokens"]
    client_text, moved = cursor_of(SOURCE.replace("x, y", "x, y, z"))
    uri = open_document(client, client_text, "hang_fault_after.py")
    items = await asyncio.wait_for(inline(client, uri, moved), timeout=60)
    assert items and insert_text(items[0]).strip()
    assert (await status(client))["generatedTokens"] > before, "the model answered again"
