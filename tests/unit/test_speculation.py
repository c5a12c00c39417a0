"""The next suggestion before it is asked for: the accepted document is what the editor
will have, and the speculative answer is the one a real request there gets.

A backend whose answer depends on the prompt stands in for the model (the real model
goes through tests/e2e/test_inline.py; the latency is `companion bench latency`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

from companion.backends.base import BackendInfo, Capabilities, Chunk, GenerationRequest, ModelSpec
from companion.config import Settings
from companion.engine.completer import Engine, EngineState
from companion.engine.speculation import after_enter, as_accepted, enter_indent, line_start
from companion.host.prefix import PrefixTracking
from tests.unit.test_prefill_budget import until


class CountingBackend:
    """Answers `v<N> = <N>` where N is the length of the prompt."""

    name = "counting"
    capabilities = Capabilities()

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []
        self.hold = threading.Event()
        self.hold.set()

    def load(self, model: ModelSpec) -> None: ...

    def unload(self) -> None: ...

    def info(self) -> BackendInfo:
        return BackendInfo("counting", "m", "cpu", 0.0, 2048)

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        self.requests.append(request)
        while not self.hold.wait(0.01):
            if request.cancel.cancelled:
                yield Chunk("", finish_reason="cancelled")
                return
        n = len(request.prompt)
        yield Chunk(f"v{n} = {n}", prompt_tokens=n, cached_tokens=0, prefill_ms=1.0)
        yield Chunk("\n", finish_reason="stop")


def engine_with(backend: CountingBackend, speculate: bool = True) -> Engine:
    engine = Engine(Settings(context_tokens=1536, speculate=speculate))
    spec = ModelSpec(name="m", path="m.gguf", family="generic", context_tokens=1536)
    engine.current = EngineState("ready", PrefixTracking(backend), spec, "test", [])
    return engine


DOCUMENT = "import os\n\n\nvalue = 1\n"


def test_line_start_counts_every_line_break() -> None:
    text = "a\r\nb\rc\nd"
    assert [line_start(text, n) for n in range(5)] == [0, 3, 5, 7, 8]


def test_as_accepted_single_line_moves_the_cursor_along_the_line() -> None:
    text, line, character = as_accepted("x = \nend\n", 0, 4, "compute(1)")
    assert text == "x = compute(1)\nend\n"
    assert (line, character) == (0, 14)


def test_as_accepted_multi_line_ends_on_the_last_inserted_line() -> None:
    text, line, character = as_accepted("def f():\n    \nend\n", 1, 4,
                                        "total = 0\n    return total")
    assert text == "def f():\n    total = 0\n    return total\nend\n"
    assert (line, character) == (2, 16)


def test_as_accepted_keeps_a_crlf_document_crlf() -> None:
    text, line, character = as_accepted("a = 1\r\nb = \r\n", 1, 4, "2\nc = 3")
    assert text == "a = 1\r\nb = 2\r\nc = 3\r\n"
    assert (line, character) == (2, 5)


def test_as_accepted_counts_columns_in_the_position_encoding() -> None:
    # "😀" is two UTF-16 code units, four UTF-8 bytes, one UTF-32 unit.
    for encoding, width in (("utf-16", 2), ("utf-8", 4), ("utf-32", 1)):
        _, line, character = as_accepted("s = ''\n", 0, 5, "😀", encoding)
        assert (line, character) == (0, 5 + width)


async def test_the_request_after_an_accept_is_answered_from_the_speculation() -> None:
    backend = CountingBackend()
    engine = engine_with(backend)
    try:
        shown = await engine.complete(DOCUMENT, 4, 0, "file:///a.py")
        assert shown.source == "model" and shown.text
        await until(lambda: engine.metrics.get("speculated") == 1)
        accepted, line, character = as_accepted(DOCUMENT, 4, 0, shown.text)
        after = await engine.complete(accepted, line, character, "file:///a.py",
                                      automatic=True)
        assert after.source == "cache"
        # The same answer a fresh engine gives there without speculating.
        fresh = engine_with(CountingBackend(), speculate=False)
        try:
            direct = await fresh.complete(accepted, line, character, "file:///a.py")
        finally:
            fresh.shutdown()
        assert direct.source == "model"
        assert after.text == direct.text and after.text != shown.text
        # …and that answer is speculated on in turn (an accept chain stays warm).
        await until(lambda: engine.metrics.get("speculated") == 2)
    finally:
        engine.shutdown()


async def test_a_real_request_cancels_the_speculation() -> None:
    backend = CountingBackend()
    engine = engine_with(backend)
    try:
        shown = await engine.complete(DOCUMENT, 4, 0, "file:///a.py")
        backend.hold.clear()  # the speculation starts and waits "in the model"
        await until(lambda: len(backend.requests) == 2)
        speculative = backend.requests[1]
        typed = DOCUMENT[:-1] + "x\n"  # the user typed something else instead
        real = asyncio.ensure_future(engine.complete(typed, 3, 9, "file:///a.py"))
        await until(lambda: speculative.cancel.cancelled)
        backend.hold.set()
        suggestion = await real
        assert suggestion.source == "model"
        assert engine.metrics.get("speculated") <= 1
        assert shown.text
    finally:
        engine.shutdown()


async def test_no_speculation_when_turned_off_or_nothing_was_shown() -> None:
    backend = CountingBackend()
    engine = engine_with(backend, speculate=False)
    try:
        await engine.complete(DOCUMENT, 4, 0, "file:///a.py")
        await asyncio.sleep(0.2)
        assert len(backend.requests) == 1 and engine.metrics.get("speculated") == 0
    finally:
        engine.shutdown()


class LineEndBackend(CountingBackend):
    """Like CountingBackend, but nothing at the end of a line that has code (as the
    model at the end of a finished statement): only a fresh line gets `v<N> = <N>`."""

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        self.requests.append(request)
        if request.prompt.split("\n")[-1].strip():
            yield Chunk("", finish_reason="stop")
            return
        yield from super().stream(request)
        self.requests.pop()


def test_enter_indent_follows_the_editors_rules() -> None:
    cases = [
        ("    if ready:", "python", "        "),
        ("    if ready:  # comment", "python", "        "),
        ("    total = sum(", "python", "        "),
        ("        return total", "python", "    "),
        ("        raise ValueError(x)", "python", "    "),
        ("    returned = 1", "python", "    "),
        ("return", "python", ""),
        ("\tvalue = 1", "python", "\t"),
        ("\tif x:", "python", "\t\t"),
        ("    s = 'a: b'  # c:", "python", "    "),
        ("  if (ready) {", "javascript", "      "),
        ("  return total;", "javascript", "  "),
    ]
    for line, language, indent in cases:
        assert enter_indent(line, language) == indent, line


def test_after_enter_is_the_fresh_line_below_the_accepted_text() -> None:
    text, line, character = after_enter("def f():\n    \nend\n", 1, 4,
                                        "if ready:", "python")
    assert text == "def f():\n    if ready:\n        \nend\n"
    assert (line, character) == (2, 8)
    # A multi-line suggestion: its last line decides the indentation.
    text, line, character = after_enter("x = 1\n", 1, 0, "def g():\n    return 2", "python")
    assert text == "x = 1\ndef g():\n    return 2\n"
    assert (line, character) == (3, 0)
    # CRLF documents get CRLF.
    text, _, _ = after_enter("a = 1\r\nb = \r\n", 1, 4, "2", "python")
    assert text == "a = 1\r\nb = 2\r\n\r\n"


def test_no_enter_when_code_follows_or_the_suggestion_ends_its_line() -> None:
    assert after_enter("x = foo()\n", 0, 8, "1, 2", "python") is None
    assert after_enter("x = \n", 0, 4, "1\n", "python") is None


async def test_after_an_accept_that_ends_the_line_the_line_below_is_speculated() -> None:
    backend = LineEndBackend()
    engine = engine_with(backend)
    try:
        shown = await engine.complete(DOCUMENT, 4, 0, "file:///a.py")
        assert shown.source == "model" and shown.text.startswith("v")
        # The end of the accepted line (nothing there), then the fresh line below it.
        await until(lambda: engine.metrics.get("speculated") == 2)
        accepted, line, character = as_accepted(DOCUMENT, 4, 0, shown.text)
        at_end = await engine.complete(accepted, line, character, "file:///a.py",
                                       automatic=True)
        assert at_end.source == "cache" and at_end.text == ""
        entered = after_enter(DOCUMENT, 4, 0, shown.text, "python")
        assert entered is not None
        after = await engine.complete(*entered, "file:///a.py", automatic=True)
        assert after.source == "cache" and after.text.startswith("v")
        fresh = engine_with(LineEndBackend(), speculate=False)
        try:
            direct = await fresh.complete(*entered, "file:///a.py")
        finally:
            fresh.shutdown()
        assert direct.source == "model" and after.text == direct.text
    finally:
        engine.shutdown()


async def test_focusing_another_file_stops_the_speculation_of_the_one_left() -> None:
    backend = CountingBackend()
    engine = engine_with(backend)
    try:
        await engine.complete(DOCUMENT, 4, 0, "file:///a.py")
        backend.hold.clear()  # the speculation starts and waits "in the model"
        await until(lambda: len(backend.requests) == 2)
        speculative = backend.requests[1]
        engine.background.focus("file:///a.py")  # the same file: it goes on
        await asyncio.sleep(0.05)
        assert not speculative.cancel.cancelled
        engine.background.focus("file:///b.py")
        await until(lambda: speculative.cancel.cancelled)
        backend.hold.set()
        await asyncio.sleep(0.05)
        assert engine.metrics.get("speculated") == 0
    finally:
        backend.hold.set()
        engine.shutdown()
