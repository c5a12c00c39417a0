"""The repo and JS suites of bench quality: hole cutting, scoring, the naive baseline's
answer, the undefined-name check and the parse check, on real files."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path
from typing import Any

import pytest

from companion.bench import js_holes, repo_holes
from companion.bench.holes import (
    Hole,
    Score,
    bracket_residue,
    brackets_balanced,
    first_identifier,
    naive_done,
    naive_fill,
    naive_prompt,
    parses,
    sample_package,
)

CLICK = repo_holes.package_dir("click")
NPM = js_holes.npm_dir()
needs_npm = pytest.mark.skipif(NPM is None and shutil.which("npm") is None,
                               reason="no npm on this machine")


def restore(hole: Hole) -> str:
    """The file again: the expected text re-indented at the hole (blank lines as they
    were, trailing spaces aside)."""
    lines = hole.expected.split("\n")
    block = "\n".join([lines[0], *((hole.indent + line) if line else "" for line in lines[1:])])
    return "\n".join(line.rstrip() for line in (hole.before + block + "\n" + hole.after)
                     .split("\n"))


def stripped(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.split("\n"))


def click_holes(name: str) -> tuple[list[Hole], list[Hole]]:
    assert CLICK is not None
    return repo_holes.cut_holes(CLICK / name, CLICK, "click")


def test_python_holes_rebuild_the_real_file() -> None:
    single, multi = click_holes("termui.py")
    text = (CLICK / "termui.py").read_text(encoding="utf-8")  # type: ignore[operator]
    assert len(single) > 20 and len(multi) > 5
    for hole in single + multi:
        assert hole.document.count("\n") + hole.expected.count("\n") == text.count("\n")
        assert hole.indent.strip() == "" and hole.line >= 30
        assert restore(hole) == stripped(text)
    assert all("\n" not in h.expected for h in single)
    assert all(isinstance(ast.parse(h.expected).body[0], ast.If | ast.For | ast.While
                          | ast.With | ast.Try) for h in multi)


@needs_npm
def test_js_holes_rebuild_the_real_file_and_parse() -> None:
    assert NPM is not None
    path = js_holes.package_root(NPM, "npm") / "npm.js"
    single, multi = js_holes.cut_holes(path, "npm")
    text = path.read_text(encoding="utf-8")
    assert single and multi
    for hole in single + multi:
        assert restore(hole) == stripped(text)
        assert hole.language == "javascript"
        assert parses(hole.original, "javascript")
    assert all(h.expected.split()[0] in {"if", "for", "while", "do", "try", "switch"}
               for h in multi)


@needs_npm
def test_js_sampling_is_deterministic_and_spread() -> None:
    first, again = js_holes.collect(12), js_holes.collect(12)
    assert [h.name for h in first] == [h.name for h in again]
    assert len({h.package for h in first}) >= 3
    assert {h.category for h in first} == {"single-line", "multi-line"}
    assert all(Path(p).is_file() for h in first for p in h.open_files)


def test_sampling_caps_files_and_keeps_order() -> None:
    single, multi = click_holes("core.py")
    other_single, other_multi = click_holes("termui.py")
    holes = sample_package(single + other_single, multi + other_multi, 9, "seed")
    assert holes == sample_package(single + other_single, multi + other_multi, 9, "seed")
    assert len(holes) == 9 and sum(h.category == "multi-line" for h in holes) == 4
    assert holes == sorted(holes, key=lambda h: (h.path, h.line))
    assert len({h.path for h in holes}) == 2


def test_parse_check_javascript() -> None:
    assert parses("function f (a) {\n  if (a) {\n    return a\n  }\n}\n", "javascript")
    assert not parses("function f (a) {\n  if (a) {\n    return a\n}\n", "javascript")
    assert not parses("const x = = 2\n", "javascript")
    assert parses("x = 1\n", "python") and not parses("x = (1\n", "python")


def test_brackets_balanced_against_the_expected_text() -> None:
    assert bracket_residue("foo({ a: '(' }", "javascript") == "("
    assert bracket_residue("a) + (b", "javascript") == ")("
    assert bracket_residue("f(]", "javascript") == "!"
    # the real line opens a call that the next lines close: so must the suggestion
    assert brackets_balanced("cb(null, {", "await this.request({", "javascript")
    assert not brackets_balanced("cb(null, {})", "await this.request({", "javascript")
    assert brackets_balanced("x = f(a)  # )", "y = g(b)", "python")
    assert not brackets_balanced("x = f(a", "y = g(b)", "python")


def test_first_identifier_skips_strings() -> None:
    assert first_identifier("'abc' + value", "python") == "value"
    assert first_identifier("`${x}` + $el", "javascript") == "$el"
    assert first_identifier("return this.x", "javascript") == "return"


def test_naive_answer_is_the_first_non_empty_line() -> None:
    # the model's first line is empty after a prompt that ends a line
    assert naive_fill("\n        return value\n    def other", "single-line", "python") \
        == "return value"
    assert naive_done("\n   x = 1\n", "single-line", "python")
    assert not naive_done("\n   x = 1", "single-line", "python")
    raw = "if (a) {\n  b()\n} else {\n  c()\n}\nreturn d\n"
    assert naive_fill(raw, "multi-line", "javascript") == \
        "if (a) {\n  b()\n} else {\n  c()\n}"
    assert naive_done(raw, "multi-line", "javascript")
    assert not naive_done("if (a) {\n  b()\n", "multi-line", "javascript")
    python = "    for x in y:\n        f(x)\n\n        g(x)\n    return 1\n"
    assert naive_fill(python, "multi-line", "python") == "for x in y:\n    f(x)\n\n    g(x)"
    assert naive_prompt("a\nb\n    ") == "a\nb\n"
    assert naive_prompt("x" * 10 + "\n" + "y\n" * 3000 + "  ", 100).startswith("y\n")


def _hole(source: str, marker: str) -> Hole:
    """A hole at the line holding `marker` in a real-looking module."""
    lines = source.split("\n")
    index = next(i for i, line in enumerate(lines) if marker in line)
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    return Hole("click", str(CLICK / "fake.py"), "single-line",  # type: ignore[operator]
                "\n".join(lines[:index]) + "\n" + indent, lines[index].strip(),
                "\n".join(lines[index + 1 :]))


MODULE = '''import os
import typing as t
from click import termui

LIMIT = 3

class Base:
    def __init__(self) -> None:
        self.items: list[int] = []

class Stack(Base):
    size = 0

    def push(self, value: int, *rest: int) -> None:
        total = value
        HOLE = 1
        for each in rest:
            total += each
'''


def test_undefined_names_in_scope() -> None:
    hole = _hole(MODULE, "HOLE")
    assert repo_holes.undefined_names(hole, "self.items.append(total + LIMIT)") == []
    assert repo_holes.undefined_names(hole, "self.size = len(rest) + each") == []
    assert repo_holes.undefined_names(hole, "x = [n for n in rest if n]") == []
    assert repo_holes.undefined_names(hole, "self.pushback.append(value)") == ["self.pushback"]
    assert repo_holes.undefined_names(hole, "total = endtime - value") == ["endtime"]
    assert repo_holes.undefined_names(hole, "os.path.join(termui.echo)") == []
    assert repo_holes.undefined_names(hole, "os.no_such_thing()") == ["os.no_such_thing"]
    assert repo_holes.undefined_names(hole, "for i in range(3):") == []
    assert repo_holes.undefined_names(hole, "value.frobnicate_xq()") == [".frobnicate_xq"]
    assert repo_holes.undefined_names(hole, "if (") is None
    # `self.x` the suggestion itself makes exists after the assignment, not before
    assert repo_holes.undefined_names(
        hole, "self.cache = list(rest)\nself.cache.append(value)") == []
    assert repo_holes.undefined_names(
        hole, "if self.cache:\n    self.cache = []") == ["self.cache"]
    assert repo_holes.undefined_names(
        hole, "for self.cursor in rest:\n    print(self.cursor)") == []


def test_undefined_names_on_a_real_click_hole() -> None:
    single, _ = click_holes("termui.py")
    for hole in single[:15]:
        assert repo_holes.undefined_names(hole, hole.expected) == [], hole.name
    hole = single[0]
    assert repo_holes.undefined_names(hole, "zzq_not_here(1)") == ["zzq_not_here"]


def test_score_sums() -> None:
    single, multi = click_holes("termui.py")
    score = Score()
    score.add(single[0], single[0].expected + "\nextra line", 0.5, "model",
              repo_holes.undefined_names)
    score.add(single[1], "", 0.1, "")
    score.add(multi[0], "zzq_not_here(", 0.2, "cache", repo_holes.undefined_names)
    row = score.summary()
    assert row["cases"] == 3 and row["exactMatch"] == pytest.approx(1 / 3, abs=1e-3)
    assert row["answered"] == pytest.approx(2 / 3, abs=1e-3)
    assert row["parses"] == 0.5 and row["balanced"] == 0.5
    assert row["sources"] == {"model": 1, "none": 1, "cache": 1}
    assert row["undefinedName"] == 0.5  # one of the two checked: the bad name


def test_uris_keep_npm_scope_folders_as_they_are() -> None:
    from urllib.parse import unquote

    from companion.bench.session import uri_for

    uri = uri_for("/usr/lib/node_modules/npm/node_modules/@npmcli/arborist/lib/index.js")
    assert uri == "file:///usr/lib/node_modules/npm/node_modules/@npmcli/arborist/lib/index.js"
    assert unquote(uri) == uri  # the key pygls keeps the document under


def test_report_shows_every_configuration_and_the_ratios() -> None:
    from companion.bench.repo_suite import format_report, ratios, score

    single, multi = click_holes("termui.py")
    holes = [single[0], multi[0]]
    rows: dict[str, Any] = {}
    for label, texts in (("naive", ["x = 1", ""]), ("pipeline", [single[0].expected, ""])):
        scores, _ = score([(h, t, 0.1, "model" if t else "") for h, t in
                           zip(holes, texts, strict=True)],
                          repo_holes.undefined_names)
        rows[label] = {c: s.summary() for c, s in scores.items()}
    report: dict[str, Any] = {
        "suite": "repo", "backend": "llamacpp", "model": "m", "seconds": {"total": 1},
              "holes": {"single-line": 1, "multi-line": 1, "packages": ["click"], "files": 1},
              "naive": rows["naive"], "pipeline": {**rows["pipeline"], "narrowed": 0,
                                                   "counters": {}}}
    report["ratio"] = ratios(report)
    assert report["ratio"]["pipeline/naive single-line"]["exactMatch"] is None  # naive 0
    text = format_report(report)
    assert "naive single" in text and "pipeline multi" in text and "undefined" in text
    assert rows["pipeline"]["single-line"]["exactMatch"] == 1.0
