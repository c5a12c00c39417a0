"""Names that exist, end to end: over cursors where the embedded model tends to invent a
name (an attribute `self` lacks, a helper nobody defined), no suggestion the real server
returns uses a name that the checker (engine/names.py) says does not exist there.

The model's exact words are not pinned (a prompt change moves them); the invariant is.
Module attributes are left to the unit cases: the server waits only a quarter second for
jedi's first lookup of a module, so this test could not tell what the server knew."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from lsprotocol import types
from pytest_lsp import LanguageClient

from companion.engine import names
from companion.engine.context import build_context
from companion.engine.postprocess import PostContext
from tests.e2e.conftest import cursor_of, inline, insert_text, open_document, status

MakeClient = Callable[..., Awaitable[LanguageClient]]

TOKENIZER = '''import re

WORD = re.compile(r"[A-Za-z_]+|\\d+|\\S")


class Tokenizer:
    """Split a text into tokens, one at a time, with one token of look-ahead."""

    def __init__(self, text):
        self.text = text
        self.position = 0
        self.pending = None

    def next_token(self):
        if self.pending is not None:
            token, self.pending = self.pending, None
            return token
        match = WORD.search(self.text, self.position)
        if match is None:
            return None
        {cursor}

    def push_back(self, token):
        self.pending = token


def count_tokens(text):
    tokenizer = Tokenizer(text)
    {cursor2}
'''

CURSORS = [
    TOKENIZER.replace("{cursor}", "█").replace("{cursor2}", "pass"),
    TOKENIZER.replace("{cursor}", "self.█").replace("{cursor2}", "pass"),
    TOKENIZER.replace("{cursor}", "return self.").replace("{cursor2}", "pass") .replace(
        "return self.", "self.position = match.end()\n        return self.█"),
    TOKENIZER.replace("{cursor}", "return match.group()").replace("{cursor2}", "█"),
    TOKENIZER.replace("{cursor}", "return match.group()").replace("{cursor2}",
                                                                 "total = █"),
    TOKENIZER.replace("{cursor}", "return match.group()").replace(
        "self.pending = token", "self.pending = token\n\n    def peek(self):\n        █"
    ).replace("{cursor2}", "pass"),
]


class _NoModules(names.ModuleNames):
    def names(self, statement: str, local: str, path: str, wait_s: float
              ) -> frozenset[str] | None:
        return None


async def test_no_suggestion_uses_a_name_that_does_not_exist(client: LanguageClient) -> None:
    shown = []
    for index, marked in enumerate(CURSORS):
        text, position = cursor_of(marked)
        uri = open_document(client, text, name=f"names_{index}.py")
        for item in await inline(client, uri, position):
            ghost = insert_text(item)
            post = PostContext(build_context(text, position.line, position.character,
                                             path=""))
            missing = names.undefined(ghost, post, text, 0.0, _NoModules())
            assert not missing, (
                f"cursor {index}: {ghost!r} uses {[use.name for use in missing]}")
            shown.append(ghost)
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
    # The model answered (the invariant holds over real suggestions, not over silence).
    assert sum(bool(ghost.strip()) for ghost in shown) >= 3, shown


COUNTER = '''class Counter:
    def __init__(self, start):
        self._count = start
        self._seen = set()

    def add(self, item):
        return len(self.█
'''
PATIENT = {"speculate": False, "inlineDeadlineMs": 60000}


async def test_the_engine_keeps_self_to_its_attributes(make_client: MakeClient) -> None:
    """With the guide (on by default) the model writes an attribute the class has; with it
    off the embedded model invents one here, and the check has to cut it."""
    seen = {guide: await _guided(make_client, marked=COUNTER, guide=guide)
            for guide in (True, False)}
    ghost, requests = seen[True]
    assert ghost.split("(")[0].split(")")[0] in ("_count", "_seen", "add"), ghost
    assert requests.get("nameGuided") == 1 and not requests.get("namesCut"), requests
    _, unguided = seen[False]
    assert not unguided.get("nameGuided") and unguided.get("namesCut") == 1, unguided


PAIRS = '''def parse_pairs(text, separator=","):
    pairs = {}
    for chunk in text.split(separator):
        key, _, value = chunk.partition("=")
        pairs[key.strip()] = value.strip()
    return █
'''


async def test_bare_names_are_guided_where_no_receiver_is_known(make_client: MakeClient
                                                                ) -> None:
    """A module-level function with no imports: no receiver the guide knows, so before
    bare names were guided the engine decoded unguided here. Now the request carries the
    document's bare names, and what the model writes after `return ` is a name that
    exists (or no name at all)."""
    seen = {guide: await _guided(make_client, marked=PAIRS, guide=guide)
            for guide in (True, False)}
    ghost, requests = seen[True]
    assert ghost.strip(), "the model answered"
    assert requests.get("nameGuided") == 1, requests
    assert not seen[False][1].get("nameGuided"), seen[False]


async def _guided(make_client: MakeClient, marked: str, guide: bool
                  ) -> tuple[str, dict[str, int]]:
    """The first inline suggestion at `marked`'s cursor from a server with `nameGuide`
    set to `guide` (checked: it uses no name that does not exist), and its counters."""
    text, position = cursor_of(marked)
    post = PostContext(build_context(text, position.line, position.character, path=""))
    client = await make_client({**PATIENT, "nameGuide": guide})
    uri = open_document(client, text, name=f"guide_{guide}.py")
    items = await inline(client, uri, position)
    ghost = insert_text(items[0]) if items else ""
    assert not names.undefined(ghost, post, text, 0.0, _NoModules()), ghost
    return ghost, (await status(client))["requests"]
