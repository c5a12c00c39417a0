"""A cancellation storm (what fast typing produces): hundreds of requests, each cancelled
at once. All are answered, no generation is left running, memory stays flat."""

from __future__ import annotations

import asyncio
import os

from tests.e2e.conftest import LOCAL_BACKENDS
from tests.e2e.rawclient import RawClient

STORM = int(os.environ.get("COMPANION_STORM_REQUESTS", "300"))
TEXT = "import os\n\n\ndef list_python_files(folder):\n    \n"


async def test_cancellation_storm_is_answered_and_leaves_nothing_running() -> None:
    client = RawClient()
    await client.start({})
    try:
        for _ in range(600):
            status = (await client.request("companion/status", {}))["result"]
            if status["state"] != "loading":
                break
            await asyncio.sleep(0.1)
        assert status["backend"] in LOCAL_BACKENDS, status["steps"]  # what auto chose here
        uri = "file:///tmp/storm/storm.py"
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": TEXT}})
        before = (await client.request("companion/status", {}))["result"]["memoryMB"]
        futures = []
        for index in range(STORM):
            column = index % 5
            method = ("textDocument/inlineCompletion" if index % 3
                      else "textDocument/completion")
            params = {"textDocument": {"uri": uri}, "position": {"line": 4, "character": column}}
            if method == "textDocument/inlineCompletion":
                params["context"] = {"triggerKind": 2}
            msg_id, future = client.send(method, params)
            client.cancel(msg_id)
            futures.append(future)
        answers = await asyncio.wait_for(asyncio.gather(*futures), timeout=300)
        assert len(answers) == STORM
        assert all("result" in answer or "error" in answer for answer in answers)
        cancelled = sum(1 for a in answers if a.get("error", {}).get("code") == -32800)
        # Nothing keeps generating once the storm is over.
        for _ in range(100):
            status = (await client.request("companion/status", {}))["result"]
            if status["inFlight"] == 0:
                break
            await asyncio.sleep(0.1)
        assert status["inFlight"] == 0
        assert status["state"] == "ready"
        assert status["memoryMB"] - before < 60, (before, status["memoryMB"])
        assert cancelled > 0
        # And the server still serves an ordinary request normally.
        answer = await client.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": 4, "character": 4},
            "context": {"triggerKind": 1}})
        assert "result" in answer
    finally:
        await client.close()
    assert client.process is not None and client.process.returncode == 0
