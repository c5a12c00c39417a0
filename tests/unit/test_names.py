"""The name check (engine/names.py) against its golden cases (tests/golden/names.json),
and what it must never do: lose a suggestion on an error, judge without the document,
block on jedi, or run when turned off."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from companion.engine import names, names_modules
from companion.engine.context import build_context, split_lines
from companion.engine.postprocess import PostContext, clean

GOLDEN = Path(__file__).parents[1] / "golden"
CASES: list[dict[str, Any]] = json.loads(
    (GOLDEN / "names.json").read_text(encoding="utf-8"))["cases"]
WAIT_S = 20.0  # jedi's first lookup of a module may take seconds: the cases wait for it


def post_context(document: str, prefix_chars: int = 4000, path: str = "") -> PostContext:
    before, _, _ = document.partition("█")
    lines = split_lines(before)
    text = document.replace("█", "")
    return PostContext(build_context(text, len(lines) - 1, len(lines[-1]),
                                     prefix_chars=prefix_chars, path=path))


def _run(case: dict[str, Any]) -> tuple[list[str], str]:
    post = post_context(case["document"])
    document = case["document"].replace("█", "")
    text = clean(case["raw"], post).text
    found = [use.name for use in names.undefined(text, post, document, WAIT_S)]
    checked = names.check(text, post, lambda kept: clean(kept, post).text, document,
                          automatic=False)
    return found, checked


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_golden(case: dict[str, Any]) -> None:
    found, checked = _run(case)
    assert found == case["undefined"], case["why"]
    assert checked == case["expected"], case["why"]


def test_golden_cases_cover_kept_and_cut() -> None:
    kept = [case for case in CASES if not case["undefined"]]
    cut = [case for case in CASES if case["undefined"]]
    assert len(CASES) >= 20 and len(kept) >= 10 and len(cut) >= 8


def test_off_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c["undefined"] == ["tokenize"])
    monkeypatch.setenv(names.ENV, "0")
    post = post_context(case["document"])
    text = clean(case["raw"], post).text
    assert names.check(text, post, lambda kept: kept, case["document"].replace("█", "")) \
        == text


def test_an_error_keeps_the_suggestion(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c["undefined"] == ["tokenize"])
    post = post_context(case["document"])

    def broken(*args: object, **kwargs: object) -> list[names.Use]:
        raise RuntimeError("checker bug")

    monkeypatch.setattr(names, "undefined", broken)
    assert names.check("return tokenize(text)", post, lambda kept: kept) == \
        "return tokenize(text)"


def test_bare_names_unjudged_without_the_top_of_the_file() -> None:
    """A window that starts below the imports and no document: bare names unknown."""
    top = "import helpers\n" + "\n".join(f"x{i} = {i}" for i in range(400))
    document = top + "\n\n\ndef f():\n    █\n"
    post = post_context(document, prefix_chars=300)
    assert post.cursor.prefix_start_line > 0
    assert names.undefined("return helpers.run()", post, "") == []
    assert [u.name for u in names.undefined(
        "return nothere()", post, document.replace("█", ""))] == ["nothere"]


def test_saved_file_stands_in_for_the_document(tmp_path: Path) -> None:
    """Without the document text, the file on disk tells what is defined above."""
    source = "from helpers import run\n" + "\n".join(f"x{i} = {i}" for i in range(400)) + \
        "\n\n\ndef f():\n    █\n"
    path = tmp_path / "module.py"
    path.write_text(source.replace("█", ""), encoding="utf-8")
    post = post_context(source, prefix_chars=300, path=str(path))
    assert names.undefined("return run()", post) == []
    assert [u.name for u in names.undefined("return walk()", post)] == ["walk"]


def test_jedi_never_blocks_a_keystroke(monkeypatch: pytest.MonkeyPatch) -> None:
    """A module lookup slower than the typing wait: not judged, answered later."""
    def slow(statement: str, local: str, path: str) -> tuple[str, int, frozenset[str]]:
        time.sleep(0.3)
        return "", 0, frozenset({"known"})

    monkeypatch.setattr(names_modules, "_jedi_names", slow)
    modules = names.ModuleNames()
    document = "import slowmod\n\n\ndef f():\n    █\n"
    post = post_context(document)
    started = time.perf_counter()
    assert names.undefined("return slowmod.missing()", post, document.replace("█", ""),
                           names.TYPING_WAIT_S, modules) == []
    assert time.perf_counter() - started < 0.2
    time.sleep(0.4)
    assert [u.name for u in names.undefined(
        "return slowmod.missing()", post, document.replace("█", ""), 0.0, modules)] == \
        ["slowmod.missing"]


def _in_subclass(tmp_path: Path, base_module: str, header: str, raw: str) -> list[str]:
    """The uses judged missing in a method of a subclass of an imported base, with the
    base's module beside the document (jedi reads it from the project)."""
    (tmp_path / "basemod.py").write_text(base_module, encoding="utf-8")
    document = f"{header}\n\n\nclass Sub(Base):\n    def run(self):\n        █\n"
    path = tmp_path / "doc.py"
    path.write_text(document.replace("█", ""), encoding="utf-8")
    post = post_context(document, path=str(path))
    return [use.name for use in names.undefined(
        raw, post, document.replace("█", ""), WAIT_S, bases=names.ModuleNames(
            names_modules._jedi_base_names))]


def test_imported_base_class_attributes(tmp_path: Path) -> None:
    """An imported base's attributes (set in its __init__, inherited from its own base)
    are known; a name it lacks is not; a base that makes attributes up, or a base name
    the document rebinds, is not judged."""
    base = ("class Root:\n    def close(self):\n        self.closed = True\n\n\n"
            "class Base(Root):\n    def __init__(self):\n        self.size = 0\n")
    header = "from basemod import Base"
    assert _in_subclass(tmp_path, base, header, "return self.size + self.closed") == []
    assert _in_subclass(tmp_path, base, header, "return self.lenght") == ["self.lenght"]
    dynamic = "class Base:\n    def __getattr__(self, name):\n        return name\n"
    assert _in_subclass(tmp_path, dynamic, header, "return self.lenght") == []
    rebound = header + "\nBase = dict"
    assert _in_subclass(tmp_path, base, rebound, "return self.lenght") == []


async def test_focusing_a_document_prefetches_its_base_class_names(tmp_path: Path) -> None:
    """The background warm-up at the editor's cursor starts the imported base's lookup,
    so the first typing request there (which waits only ms) already judges `self.x`."""
    from companion.config import Settings
    from companion.engine.completer import Engine

    base = "class Base:\n    def __init__(self):\n        self.size = 0\n"
    (tmp_path / "basemod.py").write_text(base, encoding="utf-8")
    document = ("from basemod import Base\n\n\nclass Sub(Base):\n    def run(self):\n"
                "        \n")
    path = tmp_path / "doc.py"
    path.write_text(document, encoding="utf-8")
    before = names.BASES.lookups
    engine = Engine(Settings())
    try:
        await engine.warm(path.as_uri(), document, "python", str(path), line=5)
        deadline = time.monotonic() + WAIT_S
        while names.BASES.lookups == before:
            assert time.monotonic() < deadline, "the warm-up started no lookup"
            await asyncio.sleep(0.01)
        post = post_context(document.replace("        \n", "        █\n"), path=str(path))
        found: list[str] = []
        while not found and time.monotonic() < deadline:
            found = [use.name for use in names.undefined(
                "return self.lenght", post, document, 0.0)]
            await asyncio.sleep(0.01)
        assert found == ["self.lenght"]
        assert names.BASES.lookups == before + 1  # the typing request started none
    finally:
        engine.shutdown()


def test_other_languages_are_not_judged() -> None:
    before = "function f() {\n  "
    cursor = build_context(before + "\n}\n", 1, 2, language="javascript")
    assert names.undefined("return nothere();", PostContext(cursor), before) == []
