"""Settings from initializationOptions and workspace/configuration are honoured."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import (
    assert_default_backend,
    cursor_of,
    inline,
    insert_text,
    open_document,
    status,
    wait_ready,
)

MakeClient = Callable[..., Awaitable[LanguageClient]]


async def test_templates_backend_from_initialization_options(make_client: MakeClient) -> None:
    client = await make_client({"backend": "templates"})
    current = await status(client)
    assert current["backend"] == "templates"
    assert current["state"] == "templates"
    text, position = cursor_of("import numpy█\n")
    uri = open_document(client, text, "templates.py")
    items = await inline(client, uri, position)
    assert [insert_text(item) for item in items] == [" as np"]


async def test_invalid_settings_warn_once_and_use_defaults(make_client: MakeClient) -> None:
    client = await make_client({"maxTokens": "lots", "colour": "blue"})
    current = await status(client)
    assert current["settings"]["maxTokens"] == 64
    warnings = [m.message for m in client.log_messages if m.type == types.MessageType.Warning]
    assert any("companion.maxTokens" in message for message in warnings)
    assert any("companion.colour" in message for message in warnings)
    # The rest of the settings still apply: `auto` picks this machine's local backend.
    assert current["settings"]["backend"] == "auto"
    assert_default_backend(current)


async def test_configuration_change_switches_backend(make_client: MakeClient) -> None:
    client = await make_client({})
    assert_default_backend(await status(client))  # whichever local backend auto chose
    client.set_configuration({"companion": {"backend": "templates", "maxTokens": 16}})
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=None)
    )
    deadline = asyncio.get_running_loop().time() + 60
    current: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        current = await wait_ready(client)
        if current["backend"] == "templates":
            break
        await asyncio.sleep(0.1)
    assert current["backend"] == "templates"
    assert current["settings"]["maxTokens"] == 16


async def test_memory_budget_too_small_falls_back_to_templates(make_client: MakeClient) -> None:
    client = await make_client({"memoryBudgetMB": 20})
    current = await status(client)
    assert current["backend"] == "templates"
    assert current["steps"], "the fallback is explained"
    assert any("memoryBudgetMB" in step for step in current["steps"])


async def test_max_tokens_is_honoured(make_client: MakeClient) -> None:
    client = await make_client({"maxTokens": 3})
    text, position = cursor_of("# A module with many helpers.\n█")
    uri = open_document(client, text, "max_tokens.py")
    await inline(client, uri, position)
    current = await status(client)
    assert 0 < current["generatedTokens"] <= 3
