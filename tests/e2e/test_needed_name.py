"""The name the code below needs, end to end (engine/suffix_names.py and
suffix_attributes.py, setting `neededName`): on a blank line whose code below reads a name
nothing binds, the real server's suggestion from the embedded model starts with `name =`
and goes on (the model, which never sees the code below, wrote the rest); with the setting
off, the same request is the model's own, and the counters say which ran. In a method
whose class reads an attribute nothing assigns, it starts with `self.x =`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pytest_lsp import LanguageClient

from tests.e2e.conftest import cursor_of, inline, insert_text, open_document, status

MakeClient = Callable[..., Awaitable[LanguageClient]]

DEADLINE = '''from time import time


def wait(ready, timeout):
    █
    while not ready():
        if time() > endtime:
            return False
    return True
'''
STREAM = '''class ByteStream:
    def __init__(self, result):
        self._result = result
        █

    def __iter__(self):
        yield from self._result

    def close(self):
        if self._close is not None:
            self._close()
'''
PATIENT = {"speculate": False, "inlineDeadlineMs": 60000}


async def test_a_blank_line_starts_with_the_name_the_code_below_reads(
        make_client: MakeClient) -> None:
    text, position = cursor_of(DEADLINE)
    seen: dict[bool, tuple[str, dict[str, int]]] = {}
    for needed in (True, False):
        client = await make_client({**PATIENT, "neededName": needed})
        uri = open_document(client, text, name=f"deadline_{needed}.py")
        items = await inline(client, uri, position)
        seen[needed] = (insert_text(items[0]) if items else "",
                        (await status(client))["requests"])
    ghost, requests = seen[True]
    assert ghost.startswith("endtime =") and ghost[len("endtime ="):].strip(), ghost
    assert "\n" not in ghost.rstrip("\n") and requests.get("neededName") == 1, requests
    assert not seen[False][1].get("neededName"), seen[False]


async def test_a_blank_line_of_a_method_starts_with_the_attribute_the_class_reads(
        make_client: MakeClient) -> None:
    text, position = cursor_of(STREAM)
    client = await make_client({**PATIENT, "neededName": True})
    uri = open_document(client, text, name="stream.py")
    items = await inline(client, uri, position)
    ghost = insert_text(items[0]) if items else ""
    requests = (await status(client))["requests"]
    assert ghost.startswith("self._close =") and ghost[len("self._close ="):].strip(), ghost
    assert requests.get("neededName") == 1, requests
