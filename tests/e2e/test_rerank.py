"""Candidate reranking end to end (setting `rerank`): real server, real embedded model.
An explicit invocation scores several candidates and answers; a typing keystroke never
reranks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import cursor_of, inline, insert_text, open_document, status

MakeClient = Callable[..., Awaitable[LanguageClient]]

WAIT = '''import time


def wait_for(ready, timeout: float) -> bool:
    """Poll `ready` until it is true or `timeout` seconds have passed."""
    █
    while time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(0.05)
    return False
'''
# A deadline nobody reaches on a busy machine: the test is about what happens, not when.
PATIENT = {"rerank": True, "inlineDeadlineMs": 60000, "speculate": False}


async def test_an_invoked_request_scores_candidates_and_a_keystroke_does_not(
        make_client: MakeClient) -> None:
    client = await make_client(PATIENT)
    text, position = cursor_of(WAIT)
    uri = open_document(client, text, "rerank.py")
    items = await inline(client, uri, position)
    assert len(items) == 1 and insert_text(items[0]).strip()
    requests = (await status(client))["requests"]
    assert requests.get("reranked") == 1, requests
    assert requests.get("rerankCandidates", 0) >= 2, requests

    # As-you-type, two lines further down: the greedy answer alone.
    typing = types.Position(line=position.line + 2, character=8)
    await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=typing,
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
    after = (await status(client))["requests"]
    assert after.get("reranked") == 1 and after.get("rerankCandidates") == requests.get(
        "rerankCandidates"), after
