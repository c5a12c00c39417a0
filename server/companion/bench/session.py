"""One server session over a suite's holes, asked through the LSP as a user would.

Per package, the files with holes and the files they import are opened once, at their
real paths (jedi sees the package on disk; the repository context sees the open tabs),
and the server warms them up once. Then, hole after hole in file and line order:
- the hole's file becomes the holed text (a full-text didChange, a new version);
- the keystroke that brings the cursor to the hole's line (automatic, column 0: not the
  scored spot, whose suffix differs, so the result cache cannot answer the scored
  request with it); after the grow delay the server processes the full window there;
- an explicit request at the hole (invoked, as the shortcut: the whole inline deadline,
  not the typing budget), which is scored; its item's accept command says where the
  answer came from (model, cache, templates);
- a moment later, whether the server scheduled a grow after it (the scored request ran
  the narrow prompt: counted as `narrowed`), then the file goes back to its real text.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lsprotocol import types

from companion.bench.holes import Hole
from companion.lspclient import CompanionClient

GROW_WAIT_S = 0.55  # the engine's grow delay (0.4 s) and a margin
MAX_OPEN = 6  # files open per package
# Opening files queues one warm-up prefill each on the server's single generation
# thread. A request queued behind them past the engine's hang timeout (70 s, which counts
# time in the queue) marks the model hung for the rest of the session: every answer after
# is templates, in milliseconds. So the bench waits for the warm-ups, however loaded the
# machine, and reports a hang it sees (`modelHangs` in the counters).
WARM_UP_WAIT_S = 900.0
COUNTERS = ("cacheHits", "debounced", "cancelled", "errors", "engineCrashes", "modelErrors",
            "modelHangs", "warmups", "grows", "reranked", "rerankCandidates", "rerankChanged",
            "rerankGreedy", "nameGuided", "namesCut", "neededName")


@dataclass
class Answer:
    hole: Hole
    text: str
    seconds: float
    source: str  # model | cache | templates | "" (no item)
    narrowed: bool


def uri_for(path: str) -> str:
    """The file's URI with `@` as it is: the server finds open documents by the URI as
    sent, while pygls keeps them under the unquoted one, so `%40` (npm's @scope folders)
    would never match (reported; a client that quotes it gets no suggestions there)."""
    return "file://" + quote(str(Path(path).resolve()), safe="/@")


class Session:
    """A server and the documents it has open (uri → version)."""

    def __init__(self, client: CompanionClient) -> None:
        self.client = client
        self.versions: dict[str, int] = {}
        self.focused = ""

    def open(self, path: str, language: str) -> str:
        uri = uri_for(path)
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id=language, version=1,
                text=Path(path).read_text(encoding="utf-8"))))
        self.versions[uri] = 1
        return uri

    def replace(self, uri: str, text: str) -> None:
        self.versions[uri] += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(
                uri=uri, version=self.versions[uri]),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    def close_all(self) -> None:
        for uri in self.versions:
            self.client.close_document(uri)
        self.versions.clear()

    async def counters(self) -> Counter[str]:
        requests = (await self.client.status())["requests"]
        return Counter({key: int(requests.get(key, 0)) for key in COUNTERS})

    async def ask(self, hole: Hole) -> Answer:
        uri = uri_for(hole.path)
        self.replace(uri, hole.document)
        if uri != self.focused:  # the user switches to this file's editor: the extension
            self.client.focus(uri, hole.line)  # says where its cursor is
            self.focused = uri
        await self.client.inline(uri, hole.line, 0)
        await asyncio.sleep(GROW_WAIT_S)
        await self.client.idle(timeout=WARM_UP_WAIT_S)
        grows = (await self.counters())["grows"]
        started = time.perf_counter()
        items = await self.client.inline(uri, hole.line, len(hole.indent), invoked=True)
        seconds = time.perf_counter() - started
        await asyncio.sleep(GROW_WAIT_S)
        await self.client.idle(timeout=WARM_UP_WAIT_S)  # a grow counts once its prefill is done
        narrowed = (await self.counters())["grows"] > grows
        self.replace(uri, hole.original)
        if not items:
            return Answer(hole, "", seconds, "", narrowed)
        item = items[0]
        text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
        arguments = item.command.arguments if item.command else None
        first = arguments[0] if arguments else None
        source = str(first.get("source", "")) if isinstance(first, dict) else ""
        return Answer(hole, text, seconds, source, narrowed)


def _open_set(holes: list[Hole]) -> list[str]:
    """The hole files, then the files they import, MAX_OPEN in all (a user's tabs)."""
    paths: list[str] = []
    for path in [h.path for h in holes] + [p for h in holes for p in h.open_files]:
        if path not in paths and len(paths) < MAX_OPEN:
            paths.append(path)
    return paths


async def ask_all(holes: list[Hole], settings: dict[str, Any], progress: str = ""
                  ) -> tuple[list[Answer], dict[str, Any], dict[str, int]]:
    """Every hole's answer from one server, the server's status, and its counters (how
    many answers came from the result cache, were debounced, failed...)."""
    client = CompanionClient()
    answers: list[Answer] = []
    packages: dict[str, list[Hole]] = {}
    for hole in holes:
        packages.setdefault(hole.package, []).append(hole)
    try:
        await client.start(settings)
        status = await client.wait_ready()
        session = Session(client)
        for package_holes in packages.values():
            language = package_holes[0].language
            for path in _open_set(package_holes):
                session.open(path, language)
            await client.idle(timeout=WARM_UP_WAIT_S)
            for hole in package_holes:
                answers.append(await session.ask(hole))
                if progress:
                    sys.stderr.write(f"\r{progress} {len(answers)}/{len(holes)}")
            session.close_all()
        counters = dict(await session.counters())
    finally:
        await client.close()
    return answers, status, counters
