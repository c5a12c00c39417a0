"""companion/status and companion/restart end to end."""

from __future__ import annotations

from pytest_lsp import LanguageClient

from tests.e2e.conftest import cursor_of, inline, open_document, status


async def test_status_reports_backend_model_and_latency(client: LanguageClient) -> None:
    text, position = cursor_of("def square(x):\n    return █\n")
    uri = open_document(client, text, "status.py")
    await inline(client, uri, position)
    current = await status(client)
    assert current["backend"] == "llamacpp"
    assert current["model"] == "smollm2-135m-instruct"
    assert current["device"] == "cpu"
    assert current["state"] == "ready"
    assert "llamacpp" in current["reason"]
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
    result = await client.protocol.send_request_async("companion/restart", {})
    assert result is not None
    current = await status(client)
    assert current["state"] == "ready"
    assert current["backend"] == "llamacpp"
