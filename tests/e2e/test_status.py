"""companion/status and companion/restart end to end."""

from __future__ import annotations

from pytest_lsp import LanguageClient

from companion.lspclient import plain
from tests.e2e.conftest import (
    assert_default_backend,
    cursor_of,
    inline,
    insert_text,
    open_document,
    status,
)


async def test_status_reports_backend_model_and_latency(client: LanguageClient) -> None:
    text, position = cursor_of("def square(x):\n    return █\n")
    uri = open_document(client, text, "status.py")
    await inline(client, uri, position)
    current = await status(client)
    # The backend `auto` chose on this machine (llama.cpp here, MLX on Apple Silicon, …).
    backend = assert_default_backend(current)
    assert current["model"] == "smollm2-135m-instruct"
    assert isinstance(current["device"], str) and current["device"]
    assert current["state"] == "ready"
    assert backend in current["reason"]
    assert current["memoryMB"] > 0
    assert current["requests"]["inline"] == 1
    assert current["latency"]["p50Ms"] > 0
    assert current["latency"]["p95Ms"] >= current["latency"]["p50Ms"]
    assert current["settings"]["backend"] == "auto"


async def test_progress_is_reported_while_the_model_loads(client: LanguageClient) -> None:
    reports = [report for values in client.progress_reports.values() for report in values]
    kinds = [report.kind for report in reports]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    assert reports[0].title == "Companion: loading model"


async def test_restart_reloads_the_model(client: LanguageClient) -> None:
    before = await status(client)
    assert before["loads"] >= 1, "the model loaded once at start"
    # companion/restart answers once the new load is done.
    result = plain(await client.protocol.send_request_async("companion/restart", {}))
    assert result["loads"] == before["loads"] + 1, "a model load completed after restart"
    current = await status(client)
    assert current["loads"] == before["loads"] + 1
    assert current["state"] == "ready"
    assert current["backend"] == before["backend"] and current["model"] == before["model"]
    # The reloaded model answers.
    text, position = cursor_of("def fib(n):\n    if n < 2:\n        return n\n    █\n")
    items = await inline(client, open_document(client, text, "after_restart.py"), position)
    assert items and insert_text(items[0]).strip()
    after = await status(client)
    assert after["generatedTokens"] > current["generatedTokens"]
    assert after["requests"].get("modelErrors", 0) == 0
